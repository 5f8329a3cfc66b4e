"""Models: CLIP backbones, pixel decoders, Mask2Former decoders, open-vocabulary heads, losses, segmentors."""
from . import backbones, decoders, heads, layers, losses, pixel_decoders, segmentors, utils  # noqa: F401
from .data_preprocessor import SegDataPreprocessor  # noqa: F401
