"""Sa2VA's mask losses on the grounding encoder's low-resolution masks (Sa2VA v1 ``configs/sa2va_4b.py``).

* ``loss_mask``: sigmoid cross-entropy, mean over every sampled point of every mask, weight 2.0;
* ``loss_dice``: naive dice ``1 − (2Σpt + 1) / (Σp + Σt + 1)`` (eps 1), mean over masks, weight 0.5;
* both on ``num_points`` = 12544 points per mask chosen as Mask2Former does (``oversample_ratio`` 3.0,
  ``importance_sample_ratio`` 0.75: the most uncertain of 3·P random candidates plus random ones);
* the ground truth is resized to the prediction's size with nearest interpolation first (Sa2VA: 256×256);
* optionally ``loss_iou``: soft IoU ``1 − (Σpt + 1) / (Σp + Σt − Σpt + 1)`` on the same points, mean over masks
  (``iou_weight`` > 0; the mask-caption loop's IoU 1.0, seed 002). Sa2VA itself has no IoU term (weight 0: the
  key is absent).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ovseg.models.utils.point_sample import (
    calculate_uncertainty,
    get_uncertain_point_coords_with_randomness,
    point_sample,
)

#: Sa2VA's loss weights and point sampling (v1 configs: loss_mask 2.0, loss_dice 0.5, 12544 / 3.0 / 0.75).
SA2VA_MASK_LOSS = dict(mask_weight=2.0, dice_weight=0.5, num_points=12544, oversample_ratio=3.0,
                       importance_sample_ratio=0.75)


def sa2va_mask_losses(pred: Tensor, gt: Tensor, mask_weight: float = 2.0, dice_weight: float = 0.5,
                      num_points: int = 12544, oversample_ratio: float = 3.0,
                      importance_sample_ratio: float = 0.75, iou_weight: float = 0.0) -> dict[str, Tensor]:
    """``pred``: M×h×w mask logits; ``gt``: M×H×W binary masks (any size). Returns weighted ``loss_mask`` and
    ``loss_dice``; with M = 0 both are 0 but keep ``pred`` in the graph (Sa2VA multiplies fake-mask losses by 0,
    so every rank's parameters take part in the step)."""
    if pred.shape[0] != gt.shape[0]:
        raise ValueError(f'{pred.shape[0]} predicted masks for {gt.shape[0]} ground-truth masks')
    if pred.shape[0] == 0:
        zero = pred.sum() * 0.0
        out = dict(loss_mask=zero, loss_dice=zero.clone())
        if iou_weight:
            out['loss_iou'] = zero.clone()
        return out
    pred = pred.float()
    target = F.interpolate(gt[:, None].float(), size=pred.shape[-2:], mode='nearest')
    with torch.no_grad():
        coords = get_uncertain_point_coords_with_randomness(pred[:, None], calculate_uncertainty, int(num_points),
                                                            float(oversample_ratio), float(importance_sample_ratio))
        labels = point_sample(target, coords, align_corners=False).squeeze(1)
    logits = point_sample(pred[:, None], coords, align_corners=False).squeeze(1)
    bce = F.binary_cross_entropy_with_logits(logits, labels, reduction='mean')
    prob = logits.sigmoid()
    inter = (prob * labels).sum(-1)
    dice = 1 - (2 * inter + 1) / (prob.sum(-1) + labels.sum(-1) + 1)
    out = dict(loss_mask=mask_weight * bce, loss_dice=dice_weight * dice.mean())
    if iou_weight:
        iou = 1 - (inter + 1) / (prob.sum(-1) + labels.sum(-1) - inter + 1)
        out['loss_iou'] = iou_weight * iou.mean()
    return out
