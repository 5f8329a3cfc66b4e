"""Pixel decoders (pure PyTorch): multi-scale deformable attention (Mask2Former / FC-CLIP) and the
transformer-encoder FPN (MaskFormer / SEEM Focal)."""
from .msdeformattn_pixel_decoder import MSDeformAttnPixelDecoder
from .transformer_encoder_pixel_decoder import TransformerEncoderPixelDecoder

__all__ = ['MSDeformAttnPixelDecoder', 'TransformerEncoderPixelDecoder']
