"""Models: backbones, text encoders, pixel decoders, the masked-attention decoder, class heads, losses, segmentors,
parameter-efficient wrappers."""
from . import (backbones, decoders, heads, layers, losses, peft, pixel_decoders, segmentors,  # noqa: F401
               text_encoders, utils)
from .data_preprocessor import SegDataPreprocessor  # noqa: F401
