"""Transformer decoders: Mask2Former's masked-attention decoder with pluggable class heads."""
from .masked_attention_decoder import MaskedAttentionDecoder, masked_attention_mask

__all__ = ['MaskedAttentionDecoder', 'masked_attention_mask']
