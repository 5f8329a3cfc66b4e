"""Knowledge distillation for in-vocabulary fine-tuning: keep the zero-shot model's class knowledge on the
classes the fine-tuning data no longer labels.

``L = L_seg(student) + λ · D(student class logits, teacher class logits)``, D the mean squared logit difference
per query as in the study (KL as an option), where the teacher is a frozen copy of
the model built from **its own** checkpoint (the zero-shot FC-CLIP). The study's public code loaded the student's
fine-tuning weights into the teacher by mistake; here the teacher's file is a separate config key, loaded strictly
at construction and never touched by the runner's ``load_from`` / ``init_weights``.

Queries: student and teacher come from the same checkpoint, so query ``q`` is the same decoder slot in both.
``queries='all'`` (default) distils every query: the deleted (out-of-vocabulary) classes have no target, so the
queries that still see them are exactly the ones the matcher leaves unmatched — distilling matched queries only
would not protect them. ``'unmatched'`` and ``'matched'`` restrict the loss to those query sets (matched = the
student's Hungarian assignment of the final layer).
"""
from __future__ import annotations

import copy
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from ovseg.models.losses.set_criterion import pad_target_masks
from ovseg.models.segmentors import FCCLIP
from ovseg.registry import MODELS

from .submodel_checkpoint import load_segmentor_checkpoint

#: Defaults of the distillation term: the study's KD adds an MSE between the student's and the teacher's
#: ``pred_logits`` of every query (seed 003's KD model file) with weight 1; ``kind='kl'`` (T² · KL at
#: temperature T, Hinton et al. 2015) is the alternative.
DISTILL_DEFAULTS: dict[str, Any] = dict(kind='mse', loss_weight=1.0, temperature=1.0, queries='all')


def class_logit_distillation(student: Tensor, teacher: Tensor, kind: str = 'kl', temperature: float = 1.0,
                             query_mask: Tensor | None = None) -> Tensor:
    """Distillation of B×Q×K class logits, averaged over the selected queries.

    ``kl``: T² · KL(softmax(t/T) ‖ softmax(s/T)) per query; ``mse``: mean squared logit difference per query.
    An empty selection gives 0 (with a graph, so DDP sees the parameters used).
    """
    if student.shape != teacher.shape:
        raise ValueError(f'student logits {tuple(student.shape)} vs teacher {tuple(teacher.shape)}: teacher and '
                         'student need the same queries and vocabulary')
    teacher = teacher.detach().to(student.dtype)
    if kind == 'kl':
        t = float(temperature)
        per_query = F.kl_div(F.log_softmax(student / t, -1), F.log_softmax(teacher / t, -1), reduction='none',
                             log_target=True).sum(-1) * (t * t)
    elif kind == 'mse':
        per_query = (student - teacher).pow(2).mean(-1)
    else:
        raise ValueError(f"distillation kind must be 'kl' or 'mse', got {kind!r}")
    if query_mask is None:
        return per_query.mean()
    weights = query_mask.to(per_query.dtype)
    return (per_query * weights).sum() / weights.sum().clamp_min(1.0)


@MODELS.register_module()
class DistillFCCLIP(FCCLIP):
    """FC-CLIP student distilled from a frozen FC-CLIP teacher.

    Args:
        teacher_checkpoint: the teacher's weights (the zero-shot FC-CLIP; ovseg or released FC-CLIP format). The
            student's weights come from the runner's ``load_from`` as for any fine-tuning.
        distill: ``dict(kind='mse'|'kl', loss_weight, temperature, queries='all'|'unmatched'|'matched')``,
            defaults :data:`DISTILL_DEFAULTS`.
        teacher: optional overrides of the teacher's model config (default: the student's architecture).
        Other arguments: as :class:`FCCLIP`.
    """

    def __init__(self, backbone: dict, pixel_decoder: dict, transformer_decoder: dict,
                 teacher_checkpoint: str | None = None, distill: dict | None = None, teacher: dict | None = None,
                 text_encoder: dict | None = None, test_cfg: dict | None = None, **kwargs: Any) -> None:
        super().__init__(backbone, pixel_decoder, transformer_decoder, text_encoder=text_encoder,
                         test_cfg=test_cfg, **kwargs)
        self.distill_cfg = dict(DISTILL_DEFAULTS, **(distill or {}))
        unknown = set(self.distill_cfg) - set(DISTILL_DEFAULTS)
        if unknown:
            raise KeyError(f'DistillFCCLIP distill: unknown keys {sorted(unknown)}; known: {sorted(DISTILL_DEFAULTS)}')
        if self.distill_cfg['queries'] not in ('all', 'unmatched', 'matched'):
            raise ValueError(f"distill.queries must be 'all', 'unmatched' or 'matched', got "
                             f"{self.distill_cfg['queries']!r}")
        if self.distill_cfg['kind'] not in ('kl', 'mse'):
            raise ValueError(f"distill.kind must be 'kl' or 'mse', got {self.distill_cfg['kind']!r}")
        teacher_cfg = dict(type='FCCLIP', backbone=copy.deepcopy(backbone), pixel_decoder=copy.deepcopy(pixel_decoder),
                           transformer_decoder=copy.deepcopy(transformer_decoder),
                           text_encoder=copy.deepcopy(text_encoder), test_cfg=copy.deepcopy(test_cfg))
        teacher_cfg.update(teacher or {})
        self.teacher = MODELS.build(teacher_cfg)
        self.teacher_checkpoint = teacher_checkpoint
        if teacher_checkpoint is not None:
            load_segmentor_checkpoint(self.teacher, teacher_checkpoint, 'teacher')
        self.teacher.requires_grad_(False)
        self.teacher.eval()

    def train(self, mode: bool = True) -> DistillFCCLIP:
        super().train(mode)
        self.teacher.eval()  # the teacher is a fixed function: no dropout, no batch-statistics updates
        return self

    def set_vocabulary(self, class_synonyms: Any, is_thing: Any = None, split: str = 'test') -> None:
        super().set_vocabulary(class_synonyms, is_thing, split)
        self.teacher.set_vocabulary(class_synonyms, is_thing, split)

    def _query_mask(self, outputs: dict[str, Any], targets: list[dict[str, Tensor]]) -> Tensor | None:
        which = self.distill_cfg['queries']
        if which == 'all':
            return None
        with torch.no_grad():
            indices = self.criterion.matcher(outputs, pad_target_masks(targets))
        matched = torch.zeros(outputs['pred_logits'].shape[:2], dtype=torch.bool,
                              device=outputs['pred_logits'].device)
        for b, (src, _) in enumerate(indices):
            matched[b, src.to(matched.device)] = True
        return matched if which == 'matched' else ~matched

    def loss(self, inputs: Tensor, data_samples: Any) -> dict[str, Tensor]:
        if self.teacher_checkpoint is None:
            raise RuntimeError('DistillFCCLIP: set model.teacher_checkpoint (the zero-shot model) to train; a '
                               'randomly initialised teacher would distil noise')
        feats = self.extract_feat(inputs)
        outputs = self.decode(feats, 'train')
        targets = self.build_targets(data_samples)
        losses = self.compute_losses(outputs, targets)
        losses.update(self.auxiliary_losses(feats, outputs, data_samples))
        with torch.no_grad():
            teacher_logits = self.teacher.decode(self.teacher.extract_feat(inputs), 'train')['pred_logits']
        cfg = self.distill_cfg
        losses['loss_distill'] = cfg['loss_weight'] * class_logit_distillation(
            outputs['pred_logits'], teacher_logits, cfg['kind'], cfg['temperature'],
            self._query_mask(outputs, targets))
        return losses
