"""Generic layers shared by pixel decoders and transformer decoders."""
from .ms_deform_attn import MSDeformAttn, multi_scale_deformable_attn
from .position_encoding import PositionEmbeddingSine

__all__ = ['MSDeformAttn', 'multi_scale_deformable_attn', 'PositionEmbeddingSine']
