"""Sa2VA referring-segmentation SFT on ovseg (issue 12).

Imported by configs through ``custom_imports=dict(imports=['projects.sa2va_sft.sa2va_sft'])``.
"""
from . import region_data  # noqa: F401  (SA-V / SA-1B / Open Images / toy region pairs)
from .caption_metric import RegionCaptionMetric, caption_scores, tokenize_caption  # noqa: F401
from .export import export_release, release_config  # noqa: F401
from .finetune_json import Sa2VAFinetuneDataset, normalize_finetune_text  # noqa: F401
from .grounding_encoder import TINY_SAM2, MultimaskOutput, SAM2GroundingEncoder, build_sam2_model  # noqa: F401
from .image_tiling import dynamic_preprocess, normalize_tiles, preprocess_image, tile_grid  # noqa: F401
from .intern_vit import InternVisionConfig, InternVisionModel  # noqa: F401
from .language import (  # noqa: F401
    ANSWER_LIST,
    EVAL_SEG_QUESTION,
    PROMPT_TEMPLATES,
    SEG_QUESTIONS,
    add_sa2va_tokens,
    build_toy_tokenizer,
    collate_conversations,
    encode_conversation,
    expand_image_tokens,
    load_release_tokenizer,
    stop_token_ids,
)
from .language_model import (  # noqa: F401
    TINY_QWEN2,
    SegGeneration,
    build_language_model,
    greedy_generate_with_seg,
    sa2va_lora_config,
    verify_sa2va_lora,
)
from .losses import sa2va_mask_losses  # noqa: F401
from .mask_caption import MASK_CAPTION_MASK_LOSS, REGION_CAPTION_QUESTION, MaskCaptionSa2VA, mask_iou  # noqa: F401
from .mask_caption_transforms import (  # noqa: F401
    FormatMaskCaptionInputs,
    PackMaskCaptionInputs,
    ReferringToRegionPair,
)
from .projector import build_mlp1, extract_visual_tokens, num_image_tokens, pixel_shuffle  # noqa: F401
from .release_names import (  # noqa: F401
    build_vision_from_release,
    ovseg_to_release_state_dict,
    read_release_state_dict,
    release_to_ovseg_state_dict,
)
from .sa2va import Sa2VA  # noqa: F401
from .transforms import FormatSa2VAInputs, PackSa2VAInputs  # noqa: F401
