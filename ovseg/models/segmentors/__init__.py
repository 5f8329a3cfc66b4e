"""Segmentors (mmengine BaseModels): the mask-classification base and FC-CLIP."""
from .fcclip import FCCLIP, FCCLIP_TEST_CFG, append_void_classifier
from .mask_former import MASK_FORMER_TEST_CFG, MaskFormer

__all__ = ['FCCLIP', 'FCCLIP_TEST_CFG', 'MASK_FORMER_TEST_CFG', 'MaskFormer', 'append_void_classifier']
