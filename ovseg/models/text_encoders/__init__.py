"""Text encoders owned by open-vocabulary segmentors: class names → text classifiers."""
from .clip_text_encoder import VILD_PROMPT, CLIPTextEncoder

__all__ = ['CLIPTextEncoder', 'VILD_PROMPT']
