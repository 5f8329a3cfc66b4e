"""FTZS pseudo-labels: give the segments deleted from a label configuration the class the zero-shot model sees.

A label configuration N (``tools/dataset_converters/cityscapes_inout.py``) deletes segments from the JSON's
``segments_info`` but leaves their ids in the panoptic PNGs. For each such *unlisted* id this module finds the
zero-shot prediction segment with the largest IoU and keeps the predicted class when that IoU exceeds 0.5.

Matching rule = panoptic quality's (panopticapi ``pq_compute_single_core``):

    IoU(g, p) = |g ∩ p| / (|p| + |g| − |g ∩ p| − |p ∩ VOID|)

i.e. the union leaves out the predicted segment's pixels that fall on VOID ground truth, and predicted id 0
(no segment) is never a candidate. VOID is GT id 0 only: the other deleted segments are real objects (listed
in the full JSON), and the listed crowd regions are ordinary GT here (panopticapi's crowd rule only decides
whether an *unmatched* prediction is a false positive, which does not arise when relabelling). Because GT
segments are disjoint and predicted segments are disjoint, at most one pair per segment has IoU > 0.5, so
"the largest IoU" and "the panoptic match" pick the same prediction. Unlike panopticapi no class agreement is
required (the deleted segment has no class to agree with): the prediction's class is the pseudo-label.

numpy only: the tool ``tools/inout_vocab/ftzs_pseudo_labels.py`` runs the model and calls these functions.
"""
from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any

import numpy as np

__all__ = ['DEFAULT_IOU_THRESHOLD', 'segment_ious', 'segment_bbox', 'relabel_unlisted_segments']

# panopticapi pq_compute_single_core: ``if iou > 0.5`` (strictly greater) makes a match.
DEFAULT_IOU_THRESHOLD = 0.5


def _as_ids(a: Any, what: str) -> np.ndarray:
    arr = np.asarray(a)
    if arr.ndim == 3 and arr.shape[0] == 1:
        arr = arr[0]
    if arr.ndim != 2:
        raise ValueError(f'{what} must be an H×W id map, got shape {arr.shape}')
    if not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f'{what} must hold integer segment ids, got dtype {arr.dtype}')
    arr = arr.astype(np.int64, copy=False)
    if arr.size and int(arr.min()) < 0:
        raise ValueError(f'{what} holds negative ids (min {int(arr.min())}); panoptic ids are >= 0')
    return arr


def segment_ious(gt_ids: Any, unlisted_gt_ids: Sequence[int], pred_ids: Any,
                 void_ids: Collection[int] = (0,)) -> dict[int, dict[int, float]]:
    """Panoptic IoU of each GT segment in ``unlisted_gt_ids`` with every prediction segment it overlaps.

    Args:
        gt_ids: H×W GT segment ids (decoded panoptic PNG).
        unlisted_gt_ids: the GT ids to score (need not be unlisted; any non-VOID id present in ``gt_ids``).
        pred_ids: H×W predicted segment ids at the same size; 0 = no segment (never a candidate).
        void_ids: GT ids whose pixels are VOID: excluded from each prediction's area in the union, as
            panopticapi does with GT id 0.

    Returns:
        ``{gt_id: {pred_id: iou}}`` for the prediction ids that intersect ``gt_id`` (empty dict: no overlap).
    """
    gt = _as_ids(gt_ids, 'gt_ids')
    pred = _as_ids(pred_ids, 'pred_ids')
    if gt.shape != pred.shape:
        raise ValueError(f'gt_ids {gt.shape} and pred_ids {pred.shape} differ in size; the prediction must be at '
                         'the GT resolution')
    void = {int(v) for v in void_ids}
    wanted = [int(g) for g in unlisted_gt_ids]
    bad = [g for g in wanted if g in void]
    if bad:
        raise ValueError(f'GT id(s) {bad} are VOID (void_ids={sorted(void)}) and cannot be scored')
    gt_area = dict(zip(*(x.tolist() for x in np.unique(gt, return_counts=True))))
    absent = [g for g in wanted if g not in gt_area]
    if absent:
        raise ValueError(f'GT id(s) {absent} do not occur in gt_ids')
    if not wanted:
        return {}
    pred_area = dict(zip(*(x.tolist() for x in np.unique(pred, return_counts=True))))
    offset = int(pred.max()) + 1  # joint code gt * offset + pred: exact in int64 for 24-bit ids
    joint, inter = np.unique(gt * offset + pred, return_counts=True)
    joint_gt, joint_pred = joint // offset, joint % offset
    on_void: dict[int, int] = {}
    for g, p, n in zip(joint_gt.tolist(), joint_pred.tolist(), inter.tolist()):
        if g in void:
            on_void[p] = on_void.get(p, 0) + n
    want = set(wanted)
    out: dict[int, dict[int, float]] = {g: {} for g in wanted}
    for g, p, n in zip(joint_gt.tolist(), joint_pred.tolist(), inter.tolist()):
        if g not in want or p == 0:
            continue
        union = pred_area[p] + gt_area[g] - n - on_void.get(p, 0)
        out[g][p] = n / union
    return out


def segment_bbox(mask: np.ndarray) -> list[int]:
    """COCO ``[x, y, w, h]`` of a non-empty boolean mask (as cityscapesscripts' createPanopticImgs writes it)."""
    ys = np.flatnonzero(mask.any(axis=1))
    xs = np.flatnonzero(mask.any(axis=0))
    if not len(ys):
        raise ValueError('segment_bbox: empty mask')
    return [int(xs[0]), int(ys[0]), int(xs[-1] - xs[0] + 1), int(ys[-1] - ys[0] + 1)]


def relabel_unlisted_segments(gt_pan: Any,
                              listed_segments: Sequence[Mapping[str, Any]],
                              pred_pan: Any,
                              pred_segments: Sequence[Mapping[str, Any]],
                              iou_threshold: float = DEFAULT_IOU_THRESHOLD,
                              *,
                              category_ids: Sequence[int] | None = None) -> list[dict[str, Any]]:
    """A pseudo-label record for every GT id (≠ 0) of ``gt_pan`` that ``listed_segments`` does not list.

    Args:
        gt_pan: H×W GT ids (the panoptic PNG, deleted segments included).
        listed_segments: the image's ``segments_info`` (only ``id`` is read).
        pred_pan: H×W predicted ids (0 = no segment) at the GT size.
        pred_segments: the prediction's segments (``id``, ``category_id`` = contiguous label, ``isthing``), as
            the segmentor's ``pred_segments_info``.
        iou_threshold: match when IoU > threshold; 0.5 (panopticapi) keeps matches unique, so lower values are
            refused.
        category_ids: contiguous label → dataset category id (the dataset metainfo ``category_ids``, as
            ``PanopticMetric`` maps labels); ``None``: predicted labels are written as they are.

    Returns:
        Records sorted by id: ``id``, ``category_id`` (dataset id of the matched prediction, ``None`` = dropped),
        ``iou`` (largest IoU, 0.0 without overlap), ``pred_id`` (that prediction, ``None`` without overlap),
        ``area``, ``bbox``, ``iscrowd`` 0, ``isthing`` (of the predicted class; ``None`` when dropped).
    """
    if not DEFAULT_IOU_THRESHOLD <= float(iou_threshold) < 1.0:
        raise ValueError(f'iou_threshold must be in [0.5, 1): below 0.5 one prediction may match several GT '
                         f'segments (panoptic matching is unique only above 0.5); got {iou_threshold}')
    gt = _as_ids(gt_pan, 'gt_pan')
    pred = _as_ids(pred_pan, 'pred_pan')
    listed = {int(s['id']) for s in listed_segments}
    by_id: dict[int, Mapping[str, Any]] = {}
    for i, seg in enumerate(pred_segments):
        if 'id' not in seg or 'category_id' not in seg:
            raise ValueError(f'pred_segments[{i}] needs "id" and "category_id": {dict(seg)!r}')
        by_id[int(seg['id'])] = seg
    present = np.unique(pred).tolist()
    unknown = [p for p in present if p != 0 and p not in by_id]
    if unknown:  # panopticapi raises the same way: a PNG id without a JSON entry
        raise ValueError(f'pred_pan holds segment id(s) {unknown} that pred_segments does not list')
    unlisted = [g for g in np.unique(gt).tolist() if g != 0 and g not in listed]
    ious = segment_ious(gt, unlisted, pred, void_ids=(0,))
    records = []
    for g in unlisted:
        mask = gt == g
        cands = ious[g]
        # largest IoU; ties (only possible at IoU <= 0.5) go to the smaller prediction id, deterministically
        best = min(cands, key=lambda p: (-cands[p], p)) if cands else None
        best_iou = float(cands[best]) if best is not None else 0.0
        record: dict[str, Any] = dict(id=int(g), category_id=None, iou=best_iou, pred_id=best,
                                      area=int(mask.sum()), bbox=segment_bbox(mask), iscrowd=0, isthing=None)
        if best is not None and best_iou > iou_threshold:
            seg = by_id[best]
            label = int(seg['category_id'])
            if category_ids is not None:
                if not 0 <= label < len(category_ids):
                    raise ValueError(f'prediction segment {best} has label {label} outside the '
                                     f'{len(category_ids)} classes of category_ids')
                record['category_id'] = int(category_ids[label])
            else:
                record['category_id'] = label
            record['isthing'] = bool(seg['isthing']) if 'isthing' in seg else None
        records.append(record)
    return records
