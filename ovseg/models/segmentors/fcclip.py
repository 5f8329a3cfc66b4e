"""FC-CLIP (Yu et al., NeurIPS 2023): open-vocabulary panoptic segmentation with a single frozen CLIP.

A :class:`~ovseg.models.segmentors.MaskFormer` whose classes are scored against CLIP text embeddings:

* the frozen CLIP (:class:`~ovseg.models.backbones.CLIPBackbone`) gives the multi-scale maps to the mask
  generator and ``clip_vis_dense`` to the out-of-vocabulary classifier; its text tower, read by the segmentor's
  :class:`~ovseg.models.text_encoders.CLIPTextEncoder`, turns the vocabulary into a text classifier to which a
  learnable void embedding is appended (``class_inputs``);
* training scores queries with the in-vocabulary head (``InVocabClassifier``) on the train vocabulary;
* inference re-scores each mask with the frozen CLIP (out-of-vocabulary) and fuses both by the geometric ensemble:
  α for classes seen in training, β for unseen ones (``inference_class_logits``).

Defaults follow ``fcclip/fcclip.py`` and the released eval configs (``fcclip_convnext_large_eval_ade20k.yaml``).
"""
from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from mmengine.logging import print_log
from torch import Tensor, nn

from ovseg.models.heads import geometric_ensemble, out_vocab_logits
from ovseg.registry import MODELS
from ovseg.vocabulary import ClassEntry, normalize_vocabulary, seen_classes

from .mask_former import MASK_FORMER_TEST_CFG, MaskFormer

#: FC-CLIP's inference settings: Mask2Former's, with the eval yaml's object-mask threshold and the ensemble.
FCCLIP_TEST_CFG: dict[str, Any] = dict(
    MASK_FORMER_TEST_CFG,
    object_mask_threshold=0.0,  # eval yaml OBJECT_MASK_THRESHOLD 0.0 (base yaml 0.8)
    geometric_ensemble_alpha=0.4,  # MODEL.FC_CLIP.GEOMETRIC_ENSEMBLE_ALPHA (seen classes)
    geometric_ensemble_beta=0.8,  # MODEL.FC_CLIP.GEOMETRIC_ENSEMBLE_BETA (unseen classes)
    ensemble_on_valid_mask=False,  # MODEL.FC_CLIP.ENSEMBLE_ON_VALID_MASK (True for RN CLIPs)
)


def append_void_classifier(text_classifier: Tensor, void_embedding: Tensor) -> Tensor:
    """Append the L2-normalized learnable void embedding (1×D) as the classifier's last row.

    FC-CLIP's void class is a learnable vector scored like any other class; keeping it last is the convention
    ``get_classification_logits`` relies on (last column = void).
    """
    void = F.normalize(void_embedding.reshape(1, -1), dim=-1).to(text_classifier)
    return torch.cat([text_classifier, void], dim=0)


@MODELS.register_module()
class FCCLIP(MaskFormer):
    """FC-CLIP segmentor.

    Args:
        backbone: config of the frozen CLIP (``CLIPBackbone``).
        text_encoder: config of the text side (default ``CLIPTextEncoder`` with FC-CLIP's 14 templates, reading
            the backbone's CLIP).
        transformer_decoder: ``MaskedAttentionDecoder`` config whose ``class_head`` is the ``InVocabClassifier``;
            its ``embed_dim`` is filled from the CLIP when left out.
        Other arguments: as :class:`MaskFormer`; ``test_cfg`` keys in :data:`FCCLIP_TEST_CFG`.
    """

    default_test_cfg = FCCLIP_TEST_CFG

    def __init__(self, backbone: dict, pixel_decoder: dict, transformer_decoder: dict,
                 text_encoder: dict | None = None, **kwargs: Any) -> None:
        self._seen: Tensor | None = None
        self._seen_override: list[tuple[str, ...]] | None = None
        self._warned_no_train_vocab = False
        super().__init__(backbone, pixel_decoder, transformer_decoder,
                         text_encoder=text_encoder or dict(type='CLIPTextEncoder'), **kwargs)
        # Learnable "no object" text embedding, appended (normalized) as the classifier's last row.
        self.void_embedding = nn.Embedding(1, int(self.backbone.embed_dim))

    def _complete_decoder_cfg(self, cfg: dict) -> dict:
        cfg = super()._complete_decoder_cfg(cfg)
        embed_dim = int(self.backbone.embed_dim)
        head = cfg.get('class_head')
        if isinstance(head, dict):
            head = dict(head)
            if head.get('embed_dim') is None:
                head['embed_dim'] = embed_dim
            elif int(head['embed_dim']) != embed_dim:
                raise ValueError(f'class_head.embed_dim={head["embed_dim"]} but the CLIP backbone embeds into '
                                 f'{embed_dim} dims')
            cfg['class_head'] = head
        return cfg

    # ------------------------------------------------------------------ vocabulary
    def _vocabulary_changed(self, split: str) -> None:
        self._seen = None  # recomputed lazily from the current train/test pair

    def set_seen_vocabulary(self, class_synonyms: Sequence[ClassEntry] | None) -> None:
        """Classes that count as *seen* in the geometric ensemble (α); ``None``: the training vocabulary.

        An evaluation protocol can fix it (e.g. COCO's 133 classes for a model also trained on synthetic novel
        names) so that in-training validation and a later test run score alike.
        """
        self._seen_override = None if class_synonyms is None else normalize_vocabulary(class_synonyms)
        self._seen = None

    def seen_mask(self) -> Tensor:
        """Bool[C_test]: test classes whose synonyms overlap the seen (by default: train) vocabulary."""
        test = self.require_vocabulary('test')
        if self._seen is None:
            reference = self._seen_override
            if reference is None and self._vocab['train'] is not None:
                reference = self._vocab['train']['classes']
            if reference is None:
                if not self._warned_no_train_vocab:
                    msg = ('FCCLIP: no train vocabulary set, so no test class counts as seen (β is used for all); '
                           "set one with set_vocabulary(..., split='train') or VocabularyHook(train_vocabulary=...)")
                    warnings.warn(msg, UserWarning, stacklevel=2)
                    print_log(msg, logger='current', level=logging.WARNING)
                    self._warned_no_train_vocab = True
                self._seen = torch.zeros(len(test['classes']), dtype=torch.bool)
            else:
                self._seen = torch.tensor(seen_classes(test['classes'], reference), dtype=torch.bool)
        return self._seen

    # ------------------------------------------------------------------ class scoring
    def get_text_classifier(self, split: str) -> tuple[Tensor, list[int]]:
        """(S+1)×D normalized classifier (per synonym, void row last) and the synonyms per class."""
        classifier, num_templates = self.text_encoder(self.require_vocabulary(split)['classes'])
        classifier = append_void_classifier(classifier.to(self.void_embedding.weight.device),
                                            self.void_embedding.weight)
        return classifier, num_templates

    def class_inputs(self, split: str) -> dict[str, Any]:
        classifier, num_templates = self.get_text_classifier(split)
        return dict(text_classifier=classifier, num_templates=num_templates)

    def inference_class_logits(self, feats: dict[str, Any], outputs: dict[str, Any],
                               class_inputs: dict[str, Any]) -> Tensor:
        """Geometric ensemble of in-vocab and frozen-CLIP logits → B×Q×(C+1) log-probabilities."""
        in_logits = outputs['pred_logits']
        alpha = float(self.test_cfg['geometric_ensemble_alpha'])
        beta = float(self.test_cfg['geometric_ensemble_beta'])
        if alpha == 0.0 and beta == 0.0:
            # Pure in-vocabulary prediction: skip the frozen-CLIP pass (the result is identical).
            return torch.log(in_logits.softmax(-1) + 1e-8)
        out_logits, valid = out_vocab_logits(self.backbone, feats['clip_vis_dense'], outputs['pred_masks'],
                                             class_inputs['text_classifier'], class_inputs['num_templates'])
        return geometric_ensemble(in_logits, out_logits.to(in_logits.dtype), self.seen_mask(), alpha, beta,
                                  valid if self.test_cfg['ensemble_on_valid_mask'] else None)
