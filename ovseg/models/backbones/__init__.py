"""Backbones: the frozen open_clip CLIP (ConvNeXt / ResNet) used by FC-CLIP."""
from .clip_backbone import (
                            TINY_CLIP_CONFIGS,
                            CLIPBackbone,
                            mask_attention_pool,
                            register_open_clip_model_config,
                            resolve_local_pretrained,
)

__all__ = ['CLIPBackbone', 'TINY_CLIP_CONFIGS', 'mask_attention_pool', 'register_open_clip_model_config',
           'resolve_local_pretrained']
