"""Sa2VA's grounding encoder: Meta's SAM2 (package ``sam2``) prompted by the ``[SEG]`` embedding.

Why Meta's package and not an own copy: the released Sa2VA weights are ``grounding_encoder.sam2_model.*`` with
the module names of Meta's ``SAM2Base`` (``image_encoder.trunk``, ``sam_prompt_encoder``, ``sam_mask_decoder``,
``memory_attention``, ...). Building ``sam2_model`` from Meta's classes makes loading a plain prefix strip, and
the video path reuses Meta's memory machinery instead of a vendored fork.

What Sa2VA does and this module mirrors (read from
``bytedance/Sa2VA`` ``projects/sa2va/models/sam2_train.py``, ``models/extension/sam2_base.py`` and
``hf/models/sam2.py``, ``hf/models/modeling_sa2va_chat.py``):

* input: ``DirectResize(1024)`` = a plain PIL resize to S×S (no aspect ratio kept; PIL's default resample,
  bicubic), then ``/255`` and ImageNet mean/std;
* image features: ``forward_image`` → ``_prepare_backbone_features``; the lowest-resolution level plus
  ``no_mem_embed`` (``directly_add_no_mem_embed: true``), the two higher-resolution levels go to the decoder;
* prompt: one padding point (label -1), no box, no mask; the ``[SEG]`` embedding is concatenated to the sparse
  prompt embeddings; ``multimask_output=True`` (``multimask_output_in_sam: true``, ``multimask_min_pt_num: 0``)
  and the mask with the highest predicted IoU is kept; training uses the low-res (S/4) logits and no
  ``NO_OBJ_SCORE`` masking (Sa2VA commented it out in its ``_forward_sam_heads``);
* video (``language_embd_inference``): the embedding prompts frames ``0..min(5, T)-1`` (obj id ``100 + i``),
  then ``propagate_in_video`` over all frames; masks are resized bilinearly to the original size and thresholded
  at ``sigmoid > 0.5``.

The video path drives Meta's ``SAM2VideoPredictor`` (``sam2_model`` is built as that class: a ``SAM2Base``
subclass with no extra parameters, exactly what Meta's ``build_sam2_video_predictor`` does) on an in-memory
inference state (no JPEG folder); the language embedding enters through a forward hook on
``sam_prompt_encoder`` that appends it to the sparse embeddings, i.e. the same place Sa2VA's patched
``_forward_sam_heads`` concatenates it.
"""
from __future__ import annotations

import contextlib
import copy
import logging
from collections import OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
from PIL import Image
from torch import Tensor, nn

from ovseg.registry import MODELS

from .image_tiling import IMAGENET_MEAN, IMAGENET_STD

logger = logging.getLogger(__name__)

__all__ = ['SAM2GroundingEncoder', 'MultimaskOutput', 'TINY_SAM2', 'SA2VA_SAM2_CONFIG', 'SAM2_VERSION',
           'build_sam2_model']

#: The hydra config name of the Sa2VA release's SAM2 (``SAM2TrainRunner(cfg_path='sam2_hiera_l.yaml')``).
SA2VA_SAM2_CONFIG = 'sam2_hiera_l.yaml'
#: The ``sam2`` release this module was written and tested against (its video-predictor state layout is private).
SAM2_VERSION = '1.1.0'
#: Sa2VA's ``predict_forward`` gives the LLM only the first 5 video frames; they are the prompted key frames.
SA2VA_PROMPT_FRAMES = 5
#: Sa2VA's ``language_embd_inference`` numbers the prompted objects from 100.
SA2VA_FIRST_OBJ_ID = 100

_SAM2_VIDEO_PREDICTOR = 'sam2.sam2_video_predictor.SAM2VideoPredictor'


def _tiny_sam2_config() -> dict[str, Any]:
    """A ~650k-parameter SAM2 with every module of Hiera-L, for CPU tests (about the smallest arguments Meta's
    classes accept).

    Constraints found there: a global-attention block may not open a stage (``global_att_blocks=[3]`` with
    ``stages=[1, 1, 2, 1]``); ``SAM2Base`` hard-codes the mask decoder's ``TwoWayTransformer(depth=2,
    mlp_dim=2048, num_heads=8)``, so ``d_model`` must be divisible by 8 (the decoder keeps its 2048-wide MLPs).
    Everything else is the Hiera-L yaml scaled down: ``d_model`` 32, image 256 (so S/16 = 16 feature grid,
    S/4 = 64 low-res masks), memory dim 16, one memory-attention layer and one fuser ``CXBlock``.
    """
    d_model, mem_dim, embed_dim, image_size = 32, 16, 8, 256
    feat = image_size // 16

    def rope(**extra: Any) -> dict[str, Any]:
        return dict(_target_='sam2.modeling.sam.transformer.RoPEAttention', rope_theta=10000.0,
                    feat_sizes=[feat, feat], embedding_dim=d_model, num_heads=1, downsample_rate=1, dropout=0.1,
                    **extra)

    def pos(num_pos_feats: int) -> dict[str, Any]:
        return dict(_target_='sam2.modeling.position_encoding.PositionEmbeddingSine', num_pos_feats=num_pos_feats,
                    normalize=True, scale=None, temperature=10000)

    return dict(
        _target_='sam2.modeling.sam2_base.SAM2Base',
        image_encoder=dict(
            _target_='sam2.modeling.backbones.image_encoder.ImageEncoder', scalp=1,
            trunk=dict(_target_='sam2.modeling.backbones.hieradet.Hiera', embed_dim=embed_dim, num_heads=1,
                       stages=[1, 1, 2, 1], global_att_blocks=[3], window_pos_embed_bkg_spatial_size=[7, 7],
                       window_spec=[8, 4, 4, 2]),
            neck=dict(_target_='sam2.modeling.backbones.image_encoder.FpnNeck', position_encoding=pos(d_model),
                      d_model=d_model, backbone_channel_list=[embed_dim * 8, embed_dim * 4, embed_dim * 2, embed_dim],
                      fpn_top_down_levels=[2, 3], fpn_interp_model='nearest')),
        memory_attention=dict(
            _target_='sam2.modeling.memory_attention.MemoryAttention', d_model=d_model, pos_enc_at_input=True,
            num_layers=1,
            layer=dict(_target_='sam2.modeling.memory_attention.MemoryAttentionLayer', activation='relu',
                       dim_feedforward=64, dropout=0.1, pos_enc_at_attn=False, d_model=d_model,
                       pos_enc_at_cross_attn_keys=True, pos_enc_at_cross_attn_queries=False,
                       self_attention=rope(), cross_attention=rope(rope_k_repeat=True, kv_in_dim=mem_dim))),
        memory_encoder=dict(
            _target_='sam2.modeling.memory_encoder.MemoryEncoder', out_dim=mem_dim, in_dim=d_model,
            position_encoding=pos(mem_dim),
            mask_downsampler=dict(_target_='sam2.modeling.memory_encoder.MaskDownSampler', embed_dim=d_model,
                                  kernel_size=3, stride=2, padding=1),
            fuser=dict(_target_='sam2.modeling.memory_encoder.Fuser', num_layers=1,
                       layer=dict(_target_='sam2.modeling.memory_encoder.CXBlock', dim=d_model, kernel_size=7,
                                  padding=3, layer_scale_init_value=1e-6, use_dwconv=True))),
        # the remaining SAM2Base arguments are those of sam2_hiera_l.yaml (the Sa2VA release)
        num_maskmem=7, image_size=image_size, sigmoid_scale_for_mem_enc=20.0, sigmoid_bias_for_mem_enc=-10.0,
        use_mask_input_as_output_without_sam=True, directly_add_no_mem_embed=True,
        use_high_res_features_in_sam=True, multimask_output_in_sam=True, iou_prediction_use_sigmoid=True,
        use_obj_ptrs_in_encoder=True, add_tpos_enc_to_obj_ptrs=False, only_obj_ptrs_in_the_past_for_eval=True,
        pred_obj_scores=True, pred_obj_scores_mlp=True, fixed_no_obj_ptr=True, multimask_output_for_tracking=True,
        use_multimask_token_for_obj_ptr=True, multimask_min_pt_num=0, multimask_max_pt_num=1,
        use_mlp_for_obj_ptr_proj=True, compile_image_encoder=False,
    )


#: Hydra-style argument tree of the tiny stand-in (``_target_`` = Meta's classes); pass it as ``sam2_cfg``.
TINY_SAM2: dict[str, Any] = _tiny_sam2_config()


class MultimaskOutput(NamedTuple):
    """SAM2 mask-decoder outputs for the n objects of one image (``multimask_output=True``)."""

    masks: Tensor  #: n×3×S/4×S/4 low-res mask logits
    ious: Tensor  #: n×3 predicted IoUs (sigmoid-activated: ``iou_prediction_use_sigmoid: true``)
    object_scores: Tensor  #: n×1 object-appearance logits (``pred_obj_scores: true``)


def _import_sam2() -> None:
    """Import ``sam2`` (which registers its hydra config module) or say how to install it."""
    try:
        import sam2  # noqa: F401
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            'SAM2GroundingEncoder needs Meta\'s `sam2` package: `pip install hydra-core iopath` then '
            '`SAM2_BUILD_CUDA=0 pip install --no-build-isolation --no-deps sam2==1.1.0` (see the Makefile '
            'install target and docs/sa2va_sft.md "Grounding encoder")') from exc
    from importlib.metadata import PackageNotFoundError, version
    try:
        found = version('sam2')
    except PackageNotFoundError:  # pragma: no cover - a source checkout on sys.path
        found = 'unknown'
    if found != SAM2_VERSION:
        logger.warning('sam2 %s is installed; SAM2GroundingEncoder.propagate_video builds the video predictor\'s '
                       'private inference state of sam2 %s', found, SAM2_VERSION)


def _plain(value: Any) -> Any:
    """Deep copy with every mapping as a plain ``dict`` and every list/tuple as a ``list`` (mmengine ConfigDicts
    from a config file included), which is what OmegaConf accepts."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return copy.deepcopy(value)


def build_sam2_model(sam2_cfg: str | Mapping[str, Any]) -> nn.Module:
    """Build Meta's SAM2 as a ``SAM2VideoPredictor`` (a ``SAM2Base`` with the video API, no extra weights).

    ``sam2_cfg`` is either a hydra config name of the ``sam2`` package (``'sam2_hiera_l.yaml'``, the Sa2VA release;
    also ``'configs/sam2/sam2_hiera_l.yaml'``), ``'tiny'`` (= :data:`TINY_SAM2`) or an argument tree like it.
    The model class is overridden as Meta's ``build_sam2_video_predictor`` does; no post-processing overrides are
    applied, as in Sa2VA's ``SAM2TrainRunner`` (so ``fill_hole_area`` stays 0 and no CUDA extension is needed).
    """
    _import_sam2()
    from hydra.errors import MissingConfigException
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    if sam2_cfg == 'tiny':  # the config-file spelling of TINY_SAM2
        sam2_cfg = TINY_SAM2
    if isinstance(sam2_cfg, str):
        from hydra import compose
        try:
            cfg = compose(config_name=sam2_cfg, overrides=[f'++model._target_={_SAM2_VIDEO_PREDICTOR}'])
        except MissingConfigException as exc:
            raise ValueError(f'SAM2 config {sam2_cfg!r} is not a config of the sam2 package (e.g. '
                             f'{SA2VA_SAM2_CONFIG!r}, \'configs/sam2.1/sam2.1_hiera_l.yaml\') nor \'tiny\'') from exc
        OmegaConf.resolve(cfg)
        model_cfg = cfg.model
    elif isinstance(sam2_cfg, Mapping):
        tree = _plain(sam2_cfg)
        tree['_target_'] = _SAM2_VIDEO_PREDICTOR
        model_cfg = OmegaConf.create(tree)
    else:
        raise TypeError(f'sam2_cfg must be a sam2 hydra config name or an argument mapping, got {type(sam2_cfg)}')
    return instantiate(model_cfg, _recursive_=True)


@MODELS.register_module()
class SAM2GroundingEncoder(nn.Module):
    """SAM2 whose mask decoder is prompted by LLM ``[SEG]`` embeddings (Sa2VA's ``grounding_encoder``).

    Args:
        sam2_cfg: hydra config name (default :data:`SA2VA_SAM2_CONFIG`, Sa2VA's Hiera-L), ``'tiny'`` or an
            argument tree such as :data:`TINY_SAM2` (see :func:`build_sam2_model`).
        checkpoint: optional path to Meta's ``sam2_hiera_large.pt`` (see :meth:`load_sam2_checkpoint`).
        freeze: apply :meth:`freeze_as_sa2va` at construction (Sa2VA's SFT setting, §1.3).
    """

    def __init__(self, sam2_cfg: str | Mapping[str, Any] = SA2VA_SAM2_CONFIG, checkpoint: str | None = None,
                 freeze: bool = True) -> None:
        super().__init__()
        self.sam2_model = build_sam2_model(sam2_cfg)
        # Sa2VA's SAM2TrainRunner: img_mean/img_std = ImageNet, applied after /255
        self.register_buffer('pixel_mean', torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer('pixel_std', torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        if checkpoint is not None:
            self.load_sam2_checkpoint(checkpoint)
        if freeze:
            self.freeze_as_sa2va()

    # ----------------------------------------------------------------------------------------------- properties
    @property
    def d_model(self) -> int:
        """Width of the ``[SEG]`` embedding the decoder takes (``hidden_dim``: 256 for Hiera-L)."""
        return int(self.sam2_model.hidden_dim)

    @property
    def image_size(self) -> int:
        """Side S of the square SAM2 input (1024 for the release)."""
        return int(self.sam2_model.image_size)

    # ----------------------------------------------------------------------------------------- weights / freeze
    def freeze_as_sa2va(self) -> None:
        """Freeze all of SAM2 except ``sam_mask_decoder`` (Sa2VA: ``grounding_encoder.requires_grad_(False)`` then
        ``sam2_model.sam_mask_decoder.requires_grad_(True)``, ``frozen_sam2_decoder=False``)."""
        self.sam2_model.requires_grad_(False)
        self.sam2_model.sam_mask_decoder.requires_grad_(True)

    def trainable_parameter_names(self) -> list[str]:
        """Names (relative to this module) of the parameters that currently require grad."""
        return [name for name, p in self.named_parameters() if p.requires_grad]

    def load_sam2_checkpoint(self, path: str | Path) -> None:
        """Load Meta's SAM2 checkpoint (``{'model': state_dict}``, e.g. ``sam2_hiera_large.pt``) strictly.

        Weights-only unpickling (``torch.load(weights_only=True)``) as Meta's ``_load_checkpoint``; a file that is
        missing, not such a dict, or whose keys do not match ``sam2_model`` raises naming the file.
        """
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f'SAM2 checkpoint {path} does not exist')
        try:
            ckpt = torch.load(path, map_location='cpu', weights_only=True)
        except Exception as exc:
            raise RuntimeError(f'SAM2 checkpoint {path} could not be read as a weights-only torch file: {exc}') \
                from exc
        if not isinstance(ckpt, Mapping) or not isinstance(ckpt.get('model'), Mapping):
            keys = sorted(ckpt)[:5] if isinstance(ckpt, Mapping) else type(ckpt).__name__
            raise KeyError(f'SAM2 checkpoint {path}: expected a dict with a "model" state dict (Meta\'s layout), '
                           f'got {keys}')
        state = ckpt['model']
        own = self.sam2_model.state_dict()
        missing = sorted(set(own) - set(state))
        unexpected = sorted(set(state) - set(own))
        shapes = sorted(k for k in set(own) & set(state) if tuple(own[k].shape) != tuple(state[k].shape))
        if missing or unexpected or shapes:
            raise RuntimeError(
                f'SAM2 checkpoint {path} does not match the model ({len(missing)} missing, {len(unexpected)} '
                f'unexpected, {len(shapes)} shape mismatches): missing {missing[:8]}, unexpected '
                f'{unexpected[:8]}, shape mismatch {shapes[:8]}')
        self.sam2_model.load_state_dict(state, strict=True)

    # ------------------------------------------------------------------------------------------------ image path
    def preprocess(self, images: Sequence[np.ndarray] | np.ndarray) -> Tensor:
        """HxWx3 uint8 RGB images → B×3×S×S float, as Sa2VA: ``DirectResize(S)`` then ImageNet normalisation.

        ``DirectResize.apply_image`` is ``to_pil_image(image).resize((S, S))``: PIL's default resample (bicubic)
        and no aspect-ratio preservation. A single HxWx3 array is accepted as a batch of one.
        """
        if isinstance(images, np.ndarray) and images.ndim == 3:
            images = [images]
        if len(images) == 0:
            raise ValueError('preprocess: got no images')
        size = self.image_size
        batch = []
        for i, image in enumerate(images):
            if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3 \
                    or image.dtype != np.uint8:
                desc = (f'{image.dtype} array of shape {image.shape}' if isinstance(image, np.ndarray)
                        else type(image).__name__)
                raise ValueError(f'preprocess: image {i} must be an HxWx3 uint8 RGB array, got {desc}')
            resized = np.asarray(Image.fromarray(image, mode='RGB').resize((size, size), Image.BICUBIC))
            batch.append(torch.from_numpy(resized.copy()).permute(2, 0, 1))
        pixels = torch.stack(batch).to(device=self.pixel_mean.device, dtype=torch.float32) / 255.0
        return (pixels - self.pixel_mean) / self.pixel_std

    def encode_image(self, pixels: Tensor) -> dict[str, Any]:
        """The image encoder's output (Hiera trunk + FPN neck: frozen in Sa2VA) for B preprocessed images. Callers
        that decode with two weight sets (the mask-caption loop's teacher and student) run it once and pass it to
        :meth:`image_features` twice."""
        if pixels.ndim != 4 or pixels.shape[1:] != (3, self.image_size, self.image_size):
            raise ValueError(f'image_features: expected B×3×{self.image_size}×{self.image_size} pixels (see '
                             f'preprocess), got {tuple(pixels.shape)}')
        return self.sam2_model.image_encoder(pixels)

    def image_features(self, pixels: Tensor, encoded: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Backbone features of B preprocessed images, ready for :meth:`decode`.

        Returns ``image_embed`` (B×C×S/16×S/16: the last level + ``no_mem_embed``), ``high_res_features`` (the two
        finer levels, B×C'×S/4×S/4 and B×C''×S/8×S/8, through the mask decoder's ``conv_s0`` / ``conv_s1``, which
        train) and the raw ``vision_feats``/``vision_pos_embeds``/``feat_sizes`` of ``_prepare_backbone_features``.
        ``encoded``: :meth:`encode_image`'s output for ``pixels`` (computed here when None). Same steps as
        ``SAM2Base.forward_image``.
        """
        model = self.sam2_model
        if not model.directly_add_no_mem_embed:
            raise NotImplementedError('Sa2VA (and this encoder) need a SAM2 config with directly_add_no_mem_embed')
        backbone_out = dict(encoded if encoded is not None else self.encode_image(pixels))
        backbone_out['backbone_fpn'] = list(backbone_out['backbone_fpn'])
        if model.use_high_res_features_in_sam:
            fpn = backbone_out['backbone_fpn']
            fpn[0] = model.sam_mask_decoder.conv_s0(fpn[0])
            fpn[1] = model.sam_mask_decoder.conv_s1(fpn[1])
        _, vision_feats, vision_pos_embeds, feat_sizes = model._prepare_backbone_features(backbone_out)
        batch = pixels.shape[0]
        # (HW)BC -> BCHW, as SAM2Base.track_step / Sa2VA's inject_language_embd
        high_res = [x.permute(1, 2, 0).reshape(batch, x.size(2), *s) for x, s in zip(vision_feats[:-1],
                                                                                      feat_sizes[:-1])]
        h, w = feat_sizes[-1]
        embed = (vision_feats[-1] + model.no_mem_embed).permute(1, 2, 0).reshape(batch, model.hidden_dim, h, w)
        return dict(image_embed=embed, high_res_features=high_res, vision_feats=vision_feats,
                    vision_pos_embeds=vision_pos_embeds, feat_sizes=feat_sizes)

    def decode_multimask(self, features: Mapping[str, Any], language_embeddings: Sequence[Tensor]) \
            -> list[MultimaskOutput]:
        """All 3 candidate low-res mask logits, their predicted IoUs and object-score logits, per image.

        The SAM2 heads run once on the concatenation of all objects (each object's image features repeated),
        like Sa2VA's ``get_sam2_embeddings(expand_size=num_objs)`` + ``inject_language_embd``.
        """
        embed: Tensor = features['image_embed']
        high_res: list[Tensor] = features['high_res_features']
        batch = embed.shape[0]
        if len(language_embeddings) != batch:
            raise ValueError(f'decode: got {len(language_embeddings)} language-embedding tensors for {batch} images')
        counts = []
        for i, emb in enumerate(language_embeddings):
            if emb.ndim != 2 or emb.shape[1] != self.d_model:
                raise ValueError(f'decode: language_embeddings[{i}] must be (n_objects, {self.d_model}), '
                                 f'got {tuple(emb.shape)}')
            counts.append(emb.shape[0])
        total = sum(counts)
        out_hw = (embed.shape[-2] * 4, embed.shape[-1] * 4)
        if total == 0:
            return [MultimaskOutput(embed.new_zeros(0, 3, *out_hw), embed.new_zeros(0, 3), embed.new_zeros(0, 1))
                    for _ in counts]
        index = torch.repeat_interleave(torch.arange(batch, device=embed.device),
                                        torch.tensor(counts, device=embed.device))
        lang = torch.cat(list(language_embeddings)).to(embed.device, embed.dtype)[:, None]  # N×1×C
        model = self.sam2_model
        # one padding point (label -1) and no box/mask, as SAM2Base._forward_sam_heads with point_inputs=None
        coords = embed.new_zeros(total, 1, 2)
        labels = -torch.ones(total, 1, dtype=torch.int32, device=embed.device)
        sparse, dense = model.sam_prompt_encoder(points=(coords, labels), boxes=None, masks=None)
        sparse = torch.cat([sparse, lang], dim=1)
        masks, ious, _, object_scores = model.sam_mask_decoder(
            image_embeddings=embed[index], image_pe=model.sam_prompt_encoder.get_dense_pe(),
            sparse_prompt_embeddings=sparse, dense_prompt_embeddings=dense, multimask_output=True,
            repeat_image=False, high_res_features=[f[index] for f in high_res])
        masks = masks.float()
        return [MultimaskOutput(*parts) for parts in zip(masks.split(counts), ious.split(counts),
                                                         object_scores.split(counts))]

    def decode(self, features: Mapping[str, Any], language_embeddings: Sequence[Tensor]) -> list[Tensor]:
        """Low-res mask logits per image (``n_i × S/4 × S/4``): of SAM2's 3 masks, the one with the highest
        predicted IoU (Sa2VA training path). An image with no objects gives a ``0 × S/4 × S/4`` tensor."""
        out = []
        for multi in self.decode_multimask(features, language_embeddings):
            best = multi.ious.argmax(dim=1)
            out.append(multi.masks[torch.arange(multi.masks.shape[0], device=multi.masks.device), best])
        return out

    def forward(self, images: Sequence[np.ndarray], language_embeddings: Sequence[Tensor]) -> list[Tensor]:
        """Images + per-image ``[SEG]`` embeddings → low-res mask logits (:meth:`decode`)."""
        pixels = self.preprocess(images)
        return self.decode(self.image_features(pixels), language_embeddings)

    # ------------------------------------------------------------------------------------------------ video path
    @contextlib.contextmanager
    def _language_prompt(self, embedding: Tensor) -> Iterator[None]:
        """While active, every ``sam_prompt_encoder`` call gets ``embedding`` (1×1×C) appended to its sparse
        output: the place where Sa2VA's patched ``_forward_sam_heads`` concatenates ``language_embd``."""
        def hook(_module: nn.Module, _args: Any, output: tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor]:
            sparse, dense = output
            lang = embedding.to(sparse.dtype).expand(sparse.shape[0], -1, -1)
            return torch.cat([sparse, lang], dim=1), dense

        handle = self.sam2_model.sam_prompt_encoder.register_forward_hook(hook)
        try:
            yield
        finally:
            handle.remove()

    def _video_state(self, pixels: Tensor, height: int, width: int) -> dict[str, Any]:
        """The inference state of ``SAM2VideoPredictor.init_state`` (sam2 1.1.0 keys), built from in-memory
        frames instead of a JPEG folder; ``video_height/width`` = the original size so outputs come back at it."""
        device = self.sam2_model.device
        return {
            'images': pixels, 'num_frames': len(pixels), 'offload_video_to_cpu': False,
            'offload_state_to_cpu': False, 'video_height': height, 'video_width': width, 'device': device,
            'storage_device': device, 'point_inputs_per_obj': {}, 'mask_inputs_per_obj': {},
            'cached_features': {}, 'constants': {}, 'obj_id_to_idx': OrderedDict(),
            'obj_idx_to_id': OrderedDict(), 'obj_ids': [], 'output_dict_per_obj': {},
            'temp_output_dict_per_obj': {}, 'frames_tracked_per_obj': {},
        }

    def _add_language_prompt(self, state: dict[str, Any], frame_idx: int, obj_id: int, embedding: Tensor) -> None:
        """Sa2VA's ``add_language_embd``: run the SAM heads on ``frame_idx`` with the language prompt only (no
        clicks), as an initial conditioning frame, and store the output as that object's temporary output."""
        model = self.sam2_model
        obj_idx = model._obj_id_to_idx(state, obj_id)
        is_init_cond_frame = frame_idx not in state['frames_tracked_per_obj'][obj_idx]
        if not is_init_cond_frame:
            raise RuntimeError(f'frame {frame_idx} of object {obj_id} was already tracked; prompts come first')
        with self._language_prompt(embedding.reshape(1, 1, -1)):
            current_out, _ = model._run_single_frame_inference(
                inference_state=state, output_dict=state['output_dict_per_obj'][obj_idx], frame_idx=frame_idx,
                batch_size=1, is_init_cond_frame=True, point_inputs=None, mask_inputs=None, reverse=False,
                run_mem_encoder=False, prev_sam_mask_logits=None)
        state['temp_output_dict_per_obj'][obj_idx]['cond_frame_outputs'][frame_idx] = current_out

    def propagate_video(self, frames: Sequence[np.ndarray], language_embeddings: Tensor,
                        prompt_frames: int = SA2VA_PROMPT_FRAMES) -> Tensor:
        """Segment n objects in a video: bool masks ``(n, T, H, W)`` at the frames' original size.

        As Sa2VA's ``language_embd_inference``: object i's embedding (row i of ``language_embeddings``, n×C)
        prompts frames ``0..min(prompt_frames, T)-1`` with obj id ``100 + i``; SAM2's memory then propagates
        over all T frames; logits are resized bilinearly to H×W and thresholded at ``sigmoid > 0.5``.
        Frames stay in memory (no JPEG folder). All frames must share one size, as in a video.
        """
        if len(frames) == 0:
            raise ValueError('propagate_video: got no frames')
        if prompt_frames < 1:
            raise ValueError(f'propagate_video: prompt_frames must be >= 1, got {prompt_frames}')
        if language_embeddings.ndim != 2 or language_embeddings.shape[1] != self.d_model:
            raise ValueError(f'propagate_video: language_embeddings must be (n_objects, {self.d_model}), got '
                             f'{tuple(language_embeddings.shape)}')
        sizes = {tuple(np.asarray(f).shape[:2]) for f in frames}
        if len(sizes) != 1:
            raise ValueError(f'propagate_video: all frames must have one size, got {sorted(sizes)}')
        (height, width), = sizes
        num_frames, num_objs = len(frames), language_embeddings.shape[0]
        if num_objs == 0:
            return torch.zeros(0, num_frames, height, width, dtype=torch.bool)
        model = self.sam2_model
        was_training = model.training
        model.eval()
        try:
            with torch.inference_mode():
                state = self._video_state(self.preprocess(frames), height, width)
                lang = language_embeddings.detach().to(model.device, torch.float32)
                for frame_idx in range(min(prompt_frames, num_frames)):
                    for i in range(num_objs):
                        self._add_language_prompt(state, frame_idx, SA2VA_FIRST_OBJ_ID + i, lang[i])
                masks = torch.zeros(num_objs, num_frames, height, width, dtype=torch.bool)
                seen = set()
                for frame_idx, _obj_ids, video_res_masks in model.propagate_in_video(state):
                    masks[:, frame_idx] = (video_res_masks[:, 0].sigmoid() > 0.5).cpu()
                    seen.add(frame_idx)
        finally:
            model.train(was_training)
        if len(seen) != num_frames:
            raise RuntimeError(f'propagate_video: SAM2 returned frames {sorted(seen)} of {num_frames}')
        return masks
