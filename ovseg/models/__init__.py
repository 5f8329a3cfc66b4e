"""Models: CLIP backbones, pixel decoders, Mask2Former decoders, open-vocabulary heads, losses, segmentors."""
from . import backbones, decoders, heads, layers, losses, pixel_decoders, segmentors, utils  # noqa: F401
from . import peft  # noqa: F401  (LoRA / adapter wrappers into PEFT_WRAPPERS)
from .data_preprocessor import SegDataPreprocessor  # noqa: F401
