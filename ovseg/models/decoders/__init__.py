"""Transformer decoders (Mask2Former masked attention)."""
from .fcclip_transformer_decoder import FCCLIPTransformerDecoder

__all__ = ['FCCLIPTransformerDecoder']
