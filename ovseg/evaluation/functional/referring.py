"""Referring-segmentation IoU: cIoU and gIoU exactly as LISA and Sa2VA report them (numpy only).

LISA (``train_ds.py`` ``validate`` with ``utils/utils.py`` ``intersectionAndUnionGPU`` / ``AverageMeter``)
and Sa2VA (``projects/sa2va/evaluation`` ``RES.evaluate``, a copy of the same code) score one binary
prediction per expression (sentence) against its GT mask:

* per expression: foreground ``I = |pred ∧ gt|``, ``U = |pred| + |gt| - I`` over pixels whose GT is not
  ``ignore_index`` (255; ``intersectionAndUnion`` sets ``output[target == 255] = 255`` first);
* **cIoU** = ``ΣI / (ΣU + 1e-10)``: cumulative intersection over cumulative union of all expressions;
* **gIoU** = mean over expressions of ``I / (U + 1e-5)``, where an expression whose union is empty (no
  object in the GT and none predicted) counts as IoU 1.

Binarising the model output (LISA: mask logits ``> 0``; Sa2VA: the OR of the ``[SEG]`` masks, an all-zero
mask when there is none) is the caller's job: this module takes binary masks.
"""
from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ['CIOU_EPS', 'GIOU_EPS', 'ReferringStats', 'referring_iou', 'referring_image_stats',
           'referring_summary']

CIOU_EPS = 1e-10  # LISA: intersection_meter.sum / (union_meter.sum + 1e-10)
GIOU_EPS = 1e-5  # LISA: acc_iou = intersection / (union + 1e-5)


@dataclass
class ReferringStats:
    """Sums over expressions: foreground ``intersection`` and ``union`` pixels, ``iou_sum`` of per-expression
    IoUs and the number of expressions ``count``. Add stats to reduce over images or processes."""

    intersection: float = 0.0
    union: float = 0.0
    iou_sum: float = 0.0
    count: int = 0

    def __add__(self, other: ReferringStats) -> ReferringStats:
        return ReferringStats(self.intersection + other.intersection, self.union + other.union,
                              self.iou_sum + other.iou_sum, self.count + other.count)

    def __iadd__(self, other: ReferringStats) -> ReferringStats:
        self.intersection += other.intersection
        self.union += other.union
        self.iou_sum += other.iou_sum
        self.count += other.count
        return self


def _binary(mask: Any, what: str, key: Hashable) -> np.ndarray:
    if hasattr(mask, 'detach'):  # torch tensor, without importing torch
        mask = mask.detach().cpu().numpy()
    mask = np.asarray(mask)
    if mask.dtype != bool:
        values = np.unique(mask)
        if not np.isin(values, (0, 1)).all():
            raise ValueError(f'expression {key!r}: {what} must be binary (bool or 0/1), got values {values[:10]}')
        mask = mask.astype(bool)
    return mask


def referring_iou(pred: Any, gt: Any, ignore_index: int | None = 255, key: Hashable = None) -> tuple[int, int]:
    """Foreground ``(intersection, union)`` pixel counts of one expression.

    ``pred``: binary H×W mask (bool or 0/1; array or CPU tensor). ``gt``: binary H×W mask, where pixels equal
    to ``ignore_index`` (integer masks only) are excluded from both counts, as in LISA. ``key`` names the
    expression in error messages.
    """
    if hasattr(gt, 'detach'):
        gt = gt.detach().cpu().numpy()
    gt = np.asarray(gt)
    pred = _binary(pred, 'prediction', key)
    if pred.shape != gt.shape:
        raise ValueError(f'expression {key!r}: prediction shape {pred.shape} != GT shape {gt.shape}')
    valid = None
    if gt.dtype != bool and ignore_index is not None:
        ignored = gt == ignore_index
        if ignored.any():
            valid = ~ignored
            gt = np.where(ignored, 0, gt)
    gt = _binary(gt, 'GT mask', key)
    if valid is not None:
        pred = pred & valid
    inter = int(np.count_nonzero(pred & gt))
    return inter, int(np.count_nonzero(pred)) + int(np.count_nonzero(gt)) - inter


def referring_image_stats(preds: Any, gts: Any, ignore_index: int | None = 255,
                          image_id: Hashable = None) -> ReferringStats:
    """Stats of the expressions of one image: ``preds`` / ``gts`` are sequences (or N×H×W arrays) of masks,
    one pair per expression, in the same order."""
    preds = list(preds)
    gts = list(gts)
    if len(preds) != len(gts):
        raise ValueError(f'image {image_id!r}: {len(preds)} predicted masks for {len(gts)} expressions')
    stats = ReferringStats()
    for k, (pred, gt) in enumerate(zip(preds, gts)):
        inter, union = referring_iou(pred, gt, ignore_index, key=(image_id, k))
        stats.intersection += inter
        stats.union += union
        stats.iou_sum += 1.0 if union == 0 else inter / (union + GIOU_EPS)
        stats.count += 1
    return stats


def referring_summary(stats: ReferringStats) -> dict[str, float]:
    """``{'cIoU', 'gIoU', 'num_expressions'}`` as fractions (LISA / Sa2VA print them ×100 in places)."""
    if stats.count == 0:
        raise ValueError('no referring expressions were evaluated')
    return {
        'cIoU': stats.intersection / (stats.union + CIOU_EPS),
        'gIoU': stats.iou_sum / stats.count,
        'num_expressions': stats.count,
    }
