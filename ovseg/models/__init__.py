"""Models: backbones, text encoders, pixel decoders, the masked-attention decoder, class heads, losses, segmentors,
parameter-efficient wrappers."""
from . import backbones, decoders, heads, layers, losses, peft, pixel_decoders, segmentors, text_encoders, utils  # noqa: F401
from .data_preprocessor import SegDataPreprocessor  # noqa: F401
