"""Pixel decoders (multi-scale deformable attention, pure PyTorch)."""
from .msdeformattn_pixel_decoder import MSDeformAttnPixelDecoder

__all__ = ['MSDeformAttnPixelDecoder']
