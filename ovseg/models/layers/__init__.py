"""Generic layers shared by backbones, pixel decoders, decoders and heads."""
from .conv import Conv2dNormAct, c2_xavier_fill
from .mask_pooling import mask_pooling, mask_pooling_weights, pool_with_weights
from .ms_deform_attn import MSDeformAttn, multi_scale_deformable_attn
from .position_encoding import PositionEmbeddingSine
from .transformer import MLP, CrossAttentionLayer, FFNLayer, SelfAttentionLayer, xavier_init_

__all__ = ['MLP', 'Conv2dNormAct', 'CrossAttentionLayer', 'FFNLayer', 'MSDeformAttn', 'PositionEmbeddingSine',
           'SelfAttentionLayer', 'c2_xavier_fill', 'mask_pooling', 'mask_pooling_weights',
           'multi_scale_deformable_attn', 'pool_with_weights', 'xavier_init_']
