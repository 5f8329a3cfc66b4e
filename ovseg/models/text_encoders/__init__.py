"""Text encoders owned by open-vocabulary segmentors: class names → text classifiers (FC-CLIP's CLIP text side,
SEEM's language encoder)."""
from .clip_text_encoder import VILD_PROMPT, CLIPTextEncoder
from .seem_language_encoder import SEEM_PROMPT_TEMPLATES, SEEMLanguageEncoder

__all__ = ['CLIPTextEncoder', 'SEEM_PROMPT_TEMPLATES', 'SEEMLanguageEncoder', 'VILD_PROMPT']
