"""Transformer decoders (Mask2Former masked attention)."""
from .fcclip_transformer_decoder import (MLP, CrossAttentionLayer, FCCLIPTransformerDecoder, FFNLayer,
                                         SelfAttentionLayer, masked_attention_mask)

__all__ = ['CrossAttentionLayer', 'FCCLIPTransformerDecoder', 'FFNLayer', 'MLP', 'SelfAttentionLayer',
           'masked_attention_mask']
