"""Class heads of the masked-attention decoder and FC-CLIP's inference-time ensemble."""
from .class_heads import InVocabClassifier, LinearClassHead, get_classification_logits
from .fcclip_ensemble import geometric_ensemble, out_vocab_logits, valid_mask_from_logits

__all__ = ['InVocabClassifier', 'LinearClassHead', 'geometric_ensemble', 'get_classification_logits',
           'out_vocab_logits', 'valid_mask_from_logits']
