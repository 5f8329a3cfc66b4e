"""Mask2Former's loss terms for :class:`~ovseg.models.losses.SetCriterion`: class CE, mask BCE, mask dice.

A term is a module with ``name`` (the loss key), ``loss_weight`` and ``apply_to_aux``; it is called with a
:class:`~ovseg.models.losses.set_criterion.MatchedPredictions` and returns an unweighted scalar (or a dict of
already-weighted values). Projects register further terms the same way.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ovseg.registry import MODELS

from .set_criterion import MatchedPredictions


def dice_loss(inputs: Tensor, targets: Tensor, num_masks: float) -> Tensor:
    """Smoothed (+1) dice of M logit rows vs M target rows at P points, summed and divided by ``num_masks``."""
    inputs = inputs.sigmoid().flatten(1)
    numerator = 2 * (inputs * targets).sum(-1)
    denominator = inputs.sum(-1) + targets.sum(-1)
    return (1 - (numerator + 1) / (denominator + 1)).sum() / num_masks


def sigmoid_ce_loss(inputs: Tensor, targets: Tensor, num_masks: float) -> Tensor:
    """Per-mask mean BCE over the P points, summed over masks and divided by ``num_masks``."""
    loss = F.binary_cross_entropy_with_logits(inputs, targets, reduction='none')
    return loss.mean(1).sum() / num_masks


class SetLossTerm(nn.Module):
    """Base of a loss term: its key, weight, and whether it also supervises the auxiliary predictions."""

    default_name = 'loss'
    default_weight = 1.0

    def __init__(self, loss_weight: float | None = None, name: str | None = None, apply_to_aux: bool = True) -> None:
        super().__init__()
        self.name = name or self.default_name
        self.loss_weight = float(self.default_weight if loss_weight is None else loss_weight)
        self.apply_to_aux = apply_to_aux

    def forward(self, matched: MatchedPredictions) -> Tensor | dict[str, Tensor]:
        raise NotImplementedError  # abstract: subclasses compute the term

    def extra_repr(self) -> str:
        return f'name={self.name!r}, loss_weight={self.loss_weight}, apply_to_aux={self.apply_to_aux}'


@MODELS.register_module()
class ClassCELoss(SetLossTerm):
    """Cross-entropy over C+1 classes; unmatched queries learn void, whose weight is ``eos_coef`` (0.1)."""

    default_name = 'loss_ce'
    default_weight = 2.0  # CLASS_WEIGHT

    def __init__(self, loss_weight: float | None = None, eos_coef: float = 0.1, name: str | None = None,
                 apply_to_aux: bool = True) -> None:
        super().__init__(loss_weight, name, apply_to_aux)
        self.eos_coef = float(eos_coef)

    def forward(self, matched: MatchedPredictions) -> Tensor:
        logits = matched.outputs['pred_logits']
        num_classes = logits.shape[-1] - 1
        empty_weight = torch.ones(num_classes + 1, device=logits.device, dtype=torch.float32)
        empty_weight[-1] = self.eos_coef
        target_classes = matched.matched_target_classes(num_classes, logits.device)
        return F.cross_entropy(logits.float().transpose(1, 2), target_classes, empty_weight)


class PointSampledMaskLoss(SetLossTerm):
    """A mask loss on the matched masks at the criterion's shared uncertainty-sampled points."""

    @staticmethod
    def point_loss(logits: Tensor, labels: Tensor, num_masks: float) -> Tensor:
        raise NotImplementedError  # abstract: subclasses name the point loss

    def forward(self, matched: MatchedPredictions) -> Tensor:
        if matched.num_matched == 0:  # 0 that keeps the graph (DDP needs every rank to backprop)
            return matched.outputs['pred_masks'].sum() * 0.0
        logits, labels = matched.point_logits_and_labels()
        return self.point_loss(logits, labels, matched.num_masks)


@MODELS.register_module()
class MaskBCELoss(PointSampledMaskLoss):
    """Binary cross-entropy of matched masks at the sampled points."""

    default_name = 'loss_mask'
    default_weight = 5.0  # MASK_WEIGHT
    point_loss = staticmethod(sigmoid_ce_loss)


@MODELS.register_module()
class MaskDiceLoss(PointSampledMaskLoss):
    """Dice loss of matched masks at the sampled points."""

    default_name = 'loss_dice'
    default_weight = 5.0  # DICE_WEIGHT
    point_loss = staticmethod(dice_loss)
