"""Backbones: the frozen open_clip CLIP (ConvNeXt / ResNet) used by FC-CLIP; SEEM's FocalNet (focal / focal_dw)."""
from .clip_backbone import (
                            TINY_CLIP_CONFIGS,
                            CLIPBackbone,
                            mask_attention_pool,
                            register_open_clip_model_config,
                            resolve_local_pretrained,
)
from .focalnet import FOCALNET_PRESETS, FocalNet

__all__ = ['CLIPBackbone', 'FOCALNET_PRESETS', 'FocalNet', 'TINY_CLIP_CONFIGS', 'mask_attention_pool',
           'register_open_clip_model_config', 'resolve_local_pretrained']
