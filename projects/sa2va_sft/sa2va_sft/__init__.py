"""Sa2VA referring-segmentation SFT on ovseg (issue 12).

Imported by configs through ``custom_imports=dict(imports=['projects.sa2va_sft.sa2va_sft'])``.
"""
from .finetune_json import Sa2VAFinetuneDataset, normalize_finetune_text  # noqa: F401
from .image_tiling import dynamic_preprocess, normalize_tiles, preprocess_image, tile_grid  # noqa: F401
from .intern_vit import InternVisionConfig, InternVisionModel  # noqa: F401
from .projector import build_mlp1, extract_visual_tokens, num_image_tokens, pixel_shuffle  # noqa: F401
from .release_names import (  # noqa: F401
    build_vision_from_release,
    ovseg_to_release_state_dict,
    read_release_state_dict,
    release_to_ovseg_state_dict,
)
