"""Open-vocabulary heads: text classifier, mask pooling, in/out-of-vocabulary classifiers, ensemble."""
from .fcclip_heads import (MLP, GeometricEnsemble, InVocabClassifier, MaskPooling, OutOfVocabClassifier,
                           category_overlap_mask, geometric_ensemble, get_classification_logits, mask_pooling,
                           out_vocab_logits, valid_mask_from_logits)
from .text_classifier import (VILD_PROMPT, OpenVocabTextEncoder, TextClassifierBuilder,
                              append_void_classifier, normalize_vocabulary)

__all__ = [
    'MLP', 'GeometricEnsemble', 'InVocabClassifier', 'MaskPooling', 'OutOfVocabClassifier',
    'category_overlap_mask', 'geometric_ensemble', 'get_classification_logits', 'mask_pooling',
    'out_vocab_logits', 'valid_mask_from_logits', 'VILD_PROMPT', 'OpenVocabTextEncoder',
    'TextClassifierBuilder', 'append_void_classifier', 'normalize_vocabulary',
]
