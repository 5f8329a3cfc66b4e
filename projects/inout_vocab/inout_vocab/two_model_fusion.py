"""Two segmentors trained together on fused predictions (the study's "Combined FT" rows).

``L_total = Σ L1 + Σ L2 + Σ L_comb`` (seed 003, "The maths behind it"): ``L1`` / ``L2`` are each model's own set
criterion on its own predictions (keys ``m1.*`` / ``m2.*``); ``L_comb`` is model one's criterion on the fused
prediction set (keys ``comb.*``), whose class scores come from :mod:`.fusions` and whose mask logits are the mean
of the two models' (the seed fuses logits only; averaging the masks is our choice so that the fused query is one
prediction). Both models' trainable parameters are optimised. Inference uses the fused prediction by default
(``predict_with='fused'``); ``'one'`` / ``'two'`` predict with one member (the "Pred N°6 / N°9" rows).

Each member is a full segmentor config (FC-CLIP) with its own ``checkpoint``: model one typically the zero-shot
COCO FC-CLIP, model two a Cityscapes fine-tuned one. Both share the run's vocabulary.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch.nn.functional as F
from mmengine.model import BaseModel
from torch import Tensor

from ovseg.models.segmentors.mask_former import ModeDispatchMixin
from ovseg.registry import MODELS

from .fusions import build_fusion, fuse_decoder_outputs
from .submodel_checkpoint import load_segmentor_checkpoint

MEMBERS = ('model_one', 'model_two')


def build_member(cfg: dict, role: str, shared: dict | None = None) -> Any:
    """Build a member segmentor from ``shared`` updated by ``cfg`` and load its ``checkpoint`` (if given) strictly.

    ``shared`` lets a config give the architecture once (``member={{_base_.model}}``) and each member only its
    checkpoint.
    """
    cfg = dict(shared or {}, **cfg)
    if 'type' not in cfg:
        raise ValueError(f'{role}: no segmentor type; give the member config (e.g. member={{{{_base_.model}}}})')
    checkpoint = cfg.pop('checkpoint', None)
    model = MODELS.build(cfg)
    if checkpoint is not None:
        load_segmentor_checkpoint(model, checkpoint, role)
    return model


@MODELS.register_module()
class TwoModelFusionSegmentor(ModeDispatchMixin, BaseModel):
    """Two segmentors, each with its own loss, plus a loss on their fused predictions.

    Args:
        model_one / model_two: segmentor configs (or overrides of ``member``), each optionally with ``checkpoint``.
        member: the architecture both members share, updated by ``model_one`` / ``model_two``.
        fusion: ``'entropy'`` or ``dict(type=..., **options)`` (see :mod:`.fusions`); default the study's best row,
            entropy-weighted softmax sum with normalised entropy.
        loss_weights: multipliers of the three groups ``m1``, ``m2``, ``comb`` (1.0 each: the seed sums them).
        predict_with: ``'fused'`` | ``'one'`` | ``'two'``.
        data_preprocessor: the run's ``SegDataPreprocessor`` (the members' own ones are not used).
    """

    def __init__(self, model_one: dict, model_two: dict, member: dict | None = None, fusion: str | dict = 'entropy',
                 loss_weights: dict[str, float] | None = None, predict_with: str = 'fused',
                 data_preprocessor: dict | None = None, init_cfg: dict | None = None) -> None:
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.model_one = build_member(model_one, 'model_one', member)
        self.model_two = build_member(model_two, 'model_two', member)
        self.fusion_cfg = fusion
        self.fuse = build_fusion(fusion)
        self.loss_weights = dict(m1=1.0, m2=1.0, comb=1.0, **(loss_weights or {}))
        if set(self.loss_weights) != {'m1', 'm2', 'comb'}:
            raise KeyError(f"loss_weights: keys must be 'm1', 'm2', 'comb'; got {sorted(self.loss_weights)}")
        if predict_with not in ('fused', 'one', 'two'):
            raise ValueError(f"predict_with must be 'fused', 'one' or 'two', got {predict_with!r}")
        self.predict_with = predict_with

    # ------------------------------------------------------------------ vocabulary (shared by both members)
    def set_vocabulary(self, class_synonyms: Sequence[Any], is_thing: Sequence[bool] | None = None,
                       split: str = 'test') -> None:
        for name in MEMBERS:
            getattr(self, name).set_vocabulary(class_synonyms, is_thing, split)

    def get_vocabulary(self, split: str = 'test') -> dict[str, Any] | None:
        return self.model_one.get_vocabulary(split)

    def set_seen_vocabulary(self, class_synonyms: Any) -> None:
        for name in MEMBERS:
            getattr(self, name).set_seen_vocabulary(class_synonyms)

    # ------------------------------------------------------------------ training
    def _weighted(self, losses: dict[str, Tensor], group: str) -> dict[str, Tensor]:
        w = self.loss_weights[group]
        return {f'{group}.{k}': (v * w if 'loss' in k else v) for k, v in losses.items()}

    def loss(self, inputs: Tensor, data_samples: Sequence[Any]) -> dict[str, Tensor]:
        one, two = self.model_one, self.model_two
        targets = one.build_targets(data_samples)
        feats1, feats2 = one.extract_feat(inputs), two.extract_feat(inputs)
        out1, out2 = one.decode(feats1, 'train'), two.decode(feats2, 'train')
        losses = self._weighted(one.compute_losses(out1, targets), 'm1')
        losses.update(self._weighted(two.compute_losses(out2, targets), 'm2'))
        fused = fuse_decoder_outputs(out1, out2, self.fuse)
        losses.update(self._weighted(one.compute_losses(fused, targets), 'comb'))
        return losses

    # ------------------------------------------------------------------ inference
    def _member_scores(self, member: Any, inputs: Tensor) -> tuple[Tensor, Tensor]:
        feats = member.extract_feat(inputs)
        class_inputs = member.class_inputs('test')
        outputs = member.decode(feats, 'test', class_inputs)
        return member.inference_class_logits(feats, outputs, class_inputs), outputs['pred_masks']

    def predict(self, inputs: Tensor, data_samples: Sequence[Any] | None = None) -> list[Any]:
        """Members' inference scores (FC-CLIP: geometric-ensemble log-probabilities, i.e. logits of the same
        distribution) fused as in training; mask logits averaged; model one's post-processing."""
        if self.predict_with == 'one':
            return self.model_one.predict(inputs, data_samples)
        if self.predict_with == 'two':
            return self.model_two.predict(inputs, data_samples)
        cls1, masks1 = self._member_scores(self.model_one, inputs)
        cls2, masks2 = self._member_scores(self.model_two, inputs)
        mask_cls = self.fuse(cls1, cls2.to(cls1.dtype)).as_logits()
        batch_hw = tuple(inputs.shape[-2:])
        mask_pred = F.interpolate((masks1 + masks2) / 2, size=batch_hw, mode='bilinear', align_corners=False)
        return self.model_one.postprocess(mask_cls, mask_pred, batch_hw, data_samples)

    def _forward(self, inputs: Tensor, data_samples: Sequence[Any] | None = None) -> dict[str, Any]:
        """Tensor mode: the fused prediction set on the train (training) or test vocabulary."""
        split = 'train' if self.training else 'test'
        outs = [m.decode(m.extract_feat(inputs), split) for m in (self.model_one, self.model_two)]
        return fuse_decoder_outputs(outs[0], outs[1], self.fuse)
