"""Semantic segmentation statistics (per-class TP / predicted / GT pixels) and mIoU summaries.

Three vectors per image are all that detectron2's ``SemSegEvaluator`` and mmseg's ``IoUMetric`` need from
their confusion matrices, so a metric keeps O(C) numbers per image instead of a (C+1)² matrix. Predictions
on ignored GT pixels are dropped (both libraries do), a prediction outside ``[0, C)`` counts as "no class".

Conventions for the mean:
* ``detectron2``: a class absent from the GT of the whole set is excluded from mIoU / mACC even if predicted.
* ``mmseg``: ``np.nanmean``; a predicted-but-absent class has IoU 0 and is included (``nan_to_num`` replaces
  the remaining NaNs before the mean, as mmseg's option does).
"""
from __future__ import annotations

import warnings
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ['SemSegStats', 'sem_seg_image_stats', 'sem_seg_summary', 'CONVENTIONS']

CONVENTIONS = ('detectron2', 'mmseg')


@dataclass
class SemSegStats:
    """Per-class pixel counts: ``tp`` (pred == gt), ``pos_pred`` (predicted, GT not ignored), ``pos_gt``."""

    tp: np.ndarray
    pos_pred: np.ndarray
    pos_gt: np.ndarray

    @classmethod
    def zeros(cls, num_classes: int) -> 'SemSegStats':
        return cls(*(np.zeros(num_classes, np.int64) for _ in range(3)))

    def __iadd__(self, other: 'SemSegStats') -> 'SemSegStats':
        self.tp += other.tp
        self.pos_pred += other.pos_pred
        self.pos_gt += other.pos_gt
        return self


def _to_numpy(x: Any) -> np.ndarray:
    if hasattr(x, 'detach'):
        x = x.detach().cpu().numpy()
    return np.asarray(x)


def sem_seg_image_stats(pred: Any,
                        gt: Any,
                        num_classes: int,
                        ignore_index: int = 255,
                        image_id: Hashable = None) -> SemSegStats:
    """Per-class counts of one image. ``pred`` / ``gt``: H×W (or 1×H×W) integer label maps."""
    p = _to_numpy(pred).reshape(-1)
    g = _to_numpy(gt).reshape(-1)
    if p.size != g.size:
        raise ValueError(f'image {image_id!r}: prediction shape {np.shape(pred)} does not match GT shape '
                         f'{np.shape(gt)}')
    if p.dtype.kind not in 'iu' or g.dtype.kind not in 'iu':
        raise ValueError(f'image {image_id!r}: label maps must be integer, got {p.dtype} / {g.dtype}')
    valid = g != ignore_index
    g = g[valid].astype(np.int64, copy=False)
    p = p[valid].astype(np.int64, copy=False)
    if g.size and (g.min() < 0 or g.max() >= num_classes):
        bad = np.unique(g[(g < 0) | (g >= num_classes)])[:10].tolist()
        raise ValueError(
            f'image {image_id!r}: GT labels {bad} are outside [0, {num_classes}) and are not the '
            f'ignore index {ignore_index} (wrong num_classes or reduce_zero_label?)')
    pos_gt = np.bincount(g, minlength=num_classes)
    in_range = (p >= 0) & (p < num_classes)
    pos_pred = np.bincount(p[in_range], minlength=num_classes)
    tp = np.bincount(g[p == g], minlength=num_classes)
    return SemSegStats(tp, pos_pred, pos_gt)


def sem_seg_summary(stats: SemSegStats,
                    class_names: Sequence[str] | None = None,
                    convention: str = 'detectron2',
                    nan_to_num: float | None = None) -> dict[str, float]:
    """``mIoU, fwIoU, mACC, pACC`` and per-class ``IoU-<name>`` / ``ACC-<name>``, all ×100."""
    if convention not in CONVENTIONS:
        raise ValueError(f'convention must be one of {CONVENTIONS}, got {convention!r}')
    tp = stats.tp.astype(np.float64)
    pos_gt = stats.pos_gt.astype(np.float64)
    pos_pred = stats.pos_pred.astype(np.float64)
    num_classes = tp.shape[0]
    names = list(class_names) if class_names is not None else [str(i) for i in range(num_classes)]
    if len(names) != num_classes:
        raise ValueError(f'{len(names)} class names for {num_classes} classes')
    union = pos_gt + pos_pred - tp
    total_gt = pos_gt.sum()
    freq = pos_gt / total_gt if total_gt > 0 else np.zeros_like(pos_gt)
    with np.errstate(divide='ignore', invalid='ignore'), warnings.catch_warnings():
        warnings.simplefilter('ignore', RuntimeWarning)
        if convention == 'detectron2':
            acc_valid = pos_gt > 0
            iou_valid = acc_valid & (union > 0)
            acc = np.full(num_classes, np.nan)
            iou = np.full(num_classes, np.nan)
            acc[acc_valid] = tp[acc_valid] / pos_gt[acc_valid]
            iou[iou_valid] = tp[iou_valid] / union[iou_valid]
            macc = np.sum(acc[acc_valid]) / np.sum(acc_valid) if acc_valid.any() else np.nan
            miou = np.sum(iou[iou_valid]) / np.sum(iou_valid) if iou_valid.any() else np.nan
            fwiou = np.sum(iou[iou_valid] * freq[iou_valid])
        else:
            iou = tp / union
            acc = tp / pos_gt
            if nan_to_num is not None:
                iou = np.nan_to_num(iou, nan=nan_to_num)
                acc = np.nan_to_num(acc, nan=nan_to_num)
            miou = np.nanmean(iou) if num_classes else np.nan
            macc = np.nanmean(acc) if num_classes else np.nan
            ok = ~np.isnan(iou)
            fwiou = np.sum(iou[ok] * freq[ok])
        pacc = np.sum(tp) / total_gt if total_gt > 0 else np.nan
    res = {
        'mIoU': 100 * float(miou),
        'fwIoU': 100 * float(fwiou),
        'mACC': 100 * float(macc),
        'pACC': 100 * float(pacc)
    }
    for name, v in zip(names, iou):
        res[f'IoU-{name}'] = 100 * float(v)
    for name, v in zip(names, acc):
        res[f'ACC-{name}'] = 100 * float(v)
    return res
