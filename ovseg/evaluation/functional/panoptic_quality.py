"""Panoptic quality (PQ/SQ/RQ) with panopticapi's exact rules, computed fast.

panopticapi (``pq_compute_single_core``) builds the (gt, pred) intersection table with ``np.unique`` over a
uint64 key image, which sorts every pixel (plus a second ``np.unique`` for the prediction areas). Segment
maps are piecewise constant, so we instead find the runs where the (gt, pred) pair is constant along the
flattened image (two comparisons + ``flatnonzero``: the only per-pixel work), then sort the few thousand runs
packed as ``gt | pred | length`` in one uint64 and sum the lengths per (gt, pred) key. The rules applied to
the resulting table are panopticapi's, line for line:

* VOID is GT id 0 only; a GT id missing from the GT ``segments_info`` is *not* void (and never matches);
* prediction areas are recomputed from the map, GT areas come from the GT ``segments_info['area']``;
* ``union = pred_area + gt_area - inter - |pred ∩ VOID|``; a pair matches iff same category, GT not crowd and
  ``iou > 0.5`` (strict); every such pair is a TP;
* unmatched non-crowd GT is a FN; crowd segments are remembered per category (last one wins);
* an unmatched prediction is ignored if ``(|pred ∩ VOID| + |pred ∩ crowd of its category|) / area > 0.5``,
  else it is a FP;
* averages follow ``PQStat.pq_average``: categories with ``tp + fp + fn == 0`` are skipped.

panopticapi's ``KeyError`` sanity checks are raised here as :class:`PanopticFormatError` (a ``ValueError``)
naming the image and the segment.
"""
from __future__ import annotations

import math
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ovseg.structures.panoptic_format import MAX_SEGMENT_ID, VOID

OFFSET = MAX_SEGMENT_ID + 1  # panopticapi's OFFSET = 256**3: ids are < 2**24, so gt * OFFSET + pred is unique

__all__ = [
    'OFFSET', 'PanopticFormatError', 'PQStats', 'pair_intersections', 'pq_image_stats', 'pq_average',
    'pq_summary'
]


class PanopticFormatError(ValueError):
    """A prediction/GT pair breaks the panoptic format (what panopticapi reports as ``KeyError``)."""


@dataclass
class PQStats:
    """Per-category sums over images: ``iou`` (sum of matched IoUs), ``tp``, ``fp``, ``fn``.

    Index ``k`` is the k-th entry of the category list the stats were computed with. Adding stats is how
    per-image / per-process results are reduced (order of images only changes ``iou`` in the last ulp).
    """

    iou: np.ndarray
    tp: np.ndarray
    fp: np.ndarray
    fn: np.ndarray

    @classmethod
    def zeros(cls, num_categories: int) -> 'PQStats':
        return cls(np.zeros(num_categories, np.float64), np.zeros(num_categories, np.int64),
                   np.zeros(num_categories, np.int64), np.zeros(num_categories, np.int64))

    @property
    def num_categories(self) -> int:
        return int(self.iou.shape[0])

    def __iadd__(self, other: 'PQStats') -> 'PQStats':
        if other.num_categories != self.num_categories:
            raise ValueError(f'cannot add PQStats over {other.num_categories} categories to stats over '
                             f'{self.num_categories} categories')
        self.iou += other.iou
        self.tp += other.tp
        self.fp += other.fp
        self.fn += other.fn
        return self

    def __add__(self, other: 'PQStats') -> 'PQStats':
        out = PQStats(self.iou.copy(), self.tp.copy(), self.fp.copy(), self.fn.copy())
        out += other
        return out

    def to_sparse(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(category indices, iou sums, int32 [K, 3] tp/fp/fn) of the touched categories only.

        This is what a metric keeps per image, so gathering results across DDP ranks stays small.
        """
        idx = np.flatnonzero((self.tp != 0) | (self.fp != 0) | (self.fn != 0) | (self.iou != 0))
        counts = np.stack([self.tp[idx], self.fp[idx], self.fn[idx]], axis=1).astype(np.int32)
        return idx.astype(np.int32), self.iou[idx].copy(), counts

    @classmethod
    def from_sparse(cls, num_categories: int, sparse: tuple[np.ndarray, np.ndarray, np.ndarray]) -> 'PQStats':
        idx, iou, counts = sparse
        out = cls.zeros(num_categories)
        out.iou[idx] = iou
        out.tp[idx] = counts[:, 0]
        out.fp[idx] = counts[:, 1]
        out.fn[idx] = counts[:, 2]
        return out


def _as_flat(ids: Any, what: str, image_id: Hashable) -> np.ndarray:
    """Return a contiguous 1-D integer view/copy of a segment-id map (numpy array or torch tensor)."""
    if hasattr(ids, 'detach'):  # torch tensor, without importing torch here
        ids = ids.detach().cpu().numpy()
    arr = np.asarray(ids)
    if arr.dtype.kind not in 'iu':
        raise PanopticFormatError(
            f'image {image_id!r}: {what} id map must hold integers, got dtype {arr.dtype}')
    return np.ascontiguousarray(arr).reshape(-1)


def pair_intersections(
        gt_ids: Any,
        pred_ids: Any,
        image_id: Hashable = None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """All (gt id, pred id) pairs that overlap, with their pixel counts.

    Returns ``(gt_unique, pred_unique, pair_gt, pair_pred, pair_count)``: the distinct ids of each map and,
    for every overlapping pair, indices into them plus the intersection (int64). Cost is two comparisons
    over the pixels plus work proportional to the number of constant runs.
    """
    g = _as_flat(gt_ids, 'GT', image_id)
    p = _as_flat(pred_ids, 'prediction', image_id)
    gshape = np.shape(gt_ids)
    pshape = np.shape(pred_ids)
    if g.size != p.size or tuple(gshape[-2:]) != tuple(pshape[-2:]):
        raise PanopticFormatError(f'image {image_id!r}: prediction map shape {tuple(pshape)} does not match '
                                  f'GT map shape {tuple(gshape)}')
    n = g.size
    if n == 0:
        empty = np.zeros(0, np.int64)
        return empty, empty, empty, empty, empty
    change = np.not_equal(g[1:], g[:-1])
    np.logical_or(change, np.not_equal(p[1:], p[:-1]), out=change)
    starts = np.concatenate(([0], np.flatnonzero(change) + 1))
    lengths = np.diff(starts, append=n)
    gv, pv = g[starts], p[starts]
    if gv.min() >= 0 and pv.min() >= 0:
        pbits = max(1, int(pv.max()).bit_length())
        kbits = max(1, int(gv.max()).bit_length()) + pbits
        lbits = int(lengths.max()).bit_length()
        if kbits + lbits <= 64:
            # Sort runs packed as (gt | pred | run length) and sum the lengths of equal (gt, pred) keys.
            packed = gv.astype(np.uint64) << np.uint64(pbits + lbits)
            packed |= pv.astype(np.uint64) << np.uint64(lbits)
            packed |= lengths.astype(np.uint64)
            packed.sort()
            key = packed >> np.uint64(lbits)
            first = np.empty(len(key), dtype=bool)
            first[0] = True
            np.not_equal(key[1:], key[:-1], out=first[1:])
            group = np.flatnonzero(first)
            counts = np.add.reduceat(packed & np.uint64((1 << lbits) - 1), group).astype(np.int64)
            ukey = key[group]
        elif kbits <= 64:  # ids too large to pack the lengths too: binary search for the groups
            key = (gv.astype(np.uint64) << np.uint64(pbits)) | pv.astype(np.uint64)
            skey = np.sort(key)
            first = np.empty(len(skey), dtype=bool)
            first[0] = True
            np.not_equal(skey[1:], skey[:-1], out=first[1:])
            ukey = skey[first]
            counts = np.bincount(np.searchsorted(ukey, key), weights=lengths, minlength=len(ukey))
            counts = np.rint(counts).astype(np.int64)
        else:
            ukey = None
        if ukey is not None:
            gu, pair_g = np.unique((ukey >> np.uint64(pbits)).astype(np.int64), return_inverse=True)
            pu, pair_p = np.unique((ukey & np.uint64((1 << pbits) - 1)).astype(np.int64), return_inverse=True)
            return gu, pu, pair_g.reshape(-1), pair_p.reshape(-1), counts
    gu, ginv = np.unique(gv, return_inverse=True)
    pu, pinv = np.unique(pv, return_inverse=True)
    k = len(pu)
    key = ginv.astype(np.int64) * k + pinv
    if len(gu) * k <= 4 * len(starts) + 4096:
        flat = np.bincount(key, weights=lengths, minlength=len(gu) * k)
        nz = np.flatnonzero(flat)
        counts = flat[nz]
    else:  # many distinct ids: avoid a huge dense table
        nz, inv = np.unique(key, return_inverse=True)
        counts = np.bincount(inv, weights=lengths)
    return gu, pu, nz // k, nz % k, np.rint(counts).astype(np.int64)


def _segment_table(segments: Iterable[Mapping[str, Any]], what: str,
                   image_id: Hashable) -> dict[int, Mapping[str, Any]]:
    """``{id: segment}`` with panopticapi's dict semantics (a repeated id keeps the last entry)."""
    table: dict[int, Mapping[str, Any]] = {}
    for s, seg in enumerate(segments):
        try:
            table[int(seg['id'])] = seg
        except (KeyError, TypeError, ValueError) as e:
            raise PanopticFormatError(
                f'image {image_id!r}: {what} segments_info[{s}] has no valid integer "id" ({seg!r})') from e
    return table


def _category(seg: Mapping[str, Any], sid: int, what: str, image_id: Hashable) -> Any:
    try:
        return seg['category_id']
    except (KeyError, TypeError) as e:
        raise PanopticFormatError(f'image {image_id!r}: {what} segment {sid} has no "category_id"') from e


def pq_image_stats(gt_ids: Any,
                   gt_segments: Iterable[Mapping[str, Any]],
                   pred_ids: Any,
                   pred_segments: Iterable[Mapping[str, Any]],
                   category_index: Mapping[Any, int],
                   image_id: Hashable = None,
                   out: PQStats | None = None) -> PQStats:
    """Per-category PQ sums of one image, exactly as panopticapi's ``pq_compute_single_core``.

    Args:
        gt_ids: H×W (or 1×H×W) GT segment ids, 0 = VOID (numpy array or tensor).
        gt_segments: GT ``segments_info``: ``id``, ``category_id``, ``iscrowd``, ``area`` (used as GT area).
        pred_ids: prediction segment ids of the same shape, 0 = VOID.
        pred_segments: prediction ``segments_info``: ``id``, ``category_id``.
        category_index: category id -> row of the returned stats (the evaluated categories).
        image_id: only used in error messages.
        out: accumulate into these stats instead of new ones; summing IoUs image after image in one
            accumulator is what panopticapi does, so a sequential evaluation matches it bit for bit.
    """
    num_cats = max(category_index.values(), default=-1) + 1
    stats = PQStats.zeros(num_cats) if out is None else out
    if stats.num_categories < num_cats:
        raise ValueError(f'out has {stats.num_categories} categories, category_index needs {num_cats}')
    gt_table = _segment_table(gt_segments, 'GT', image_id)
    pred_table = _segment_table(pred_segments, 'prediction', image_id)
    gu, pu, pair_g, pair_p, pair_n = pair_intersections(gt_ids, pred_ids, image_id)

    # Prediction areas from the map + sanity checks (panopticapi's KeyErrors), per distinct pred id.
    gu_list, pu_list = gu.tolist(), pu.tolist()
    parea = np.bincount(pair_p, weights=pair_n, minlength=len(pu)).astype(np.int64)
    p_known = np.zeros(len(pu), dtype=bool)
    p_cat = np.full(len(pu), -1, dtype=np.int64)
    for j, u in enumerate(pu_list):
        pseg = pred_table.get(u)
        if pseg is None:
            if u == VOID:
                continue
            raise PanopticFormatError(
                f'image {image_id!r}: segment id {u} is present in the prediction PNG but not in its '
                'segments_info')
        cat = _category(pseg, u, 'prediction', image_id)
        if cat not in category_index:
            raise PanopticFormatError(
                f'image {image_id!r}: prediction segment {u} has unknown category_id {cat!r}')
        p_known[j] = True
        p_cat[j] = category_index[cat]
    if int(p_known.sum()) != len(pred_table):
        present = set(pu_list)
        missing = [sid for sid in pred_table if sid not in present]
        raise PanopticFormatError(
            f'image {image_id!r}: prediction segments {missing} are listed in segments_info but absent '
            'from the prediction PNG')

    # Per distinct GT id: listed?, crowd?, category row (-1: outside the evaluated list), JSON area.
    g_known = np.zeros(len(gu), dtype=bool)
    g_crowd = np.zeros(len(gu), dtype=bool)
    g_cat = np.full(len(gu), -1, dtype=np.int64)
    g_area = np.full(len(gu), np.nan)
    for i, u in enumerate(gu_list):
        gseg = gt_table.get(u)
        if gseg is None:
            continue
        g_known[i] = True
        g_crowd[i] = gseg.get('iscrowd', 0) == 1
        g_cat[i] = category_index.get(_category(gseg, u, 'GT', image_id), -1)
        area = gseg.get('area')
        if area is not None:
            g_area[i] = area

    # |pred ∩ VOID| (GT id 0, whether or not 0 is also listed as a segment).
    pvoid = np.zeros(len(pu), dtype=np.int64)
    if gu_list and gu_list[0] == VOID:  # gu is sorted and ids are >= 0 on this path
        on_void = pair_g == 0
        pvoid[pair_p[on_void]] = pair_n[on_void]
    elif VOID in gu_list:
        on_void = pair_g == gu_list.index(VOID)
        pvoid[pair_p[on_void]] = pair_n[on_void]

    # Matching: every candidate pair with IoU > 0.5 is a TP (unique for consistent data, as in panopticapi).
    cand = (g_known[pair_g] & p_known[pair_p] & ~g_crowd[pair_g] & (g_cat[pair_g] >= 0)
            & (g_cat[pair_g] == p_cat[pair_p]))
    cg, cp, cn = pair_g[cand], pair_p[cand], pair_n[cand]
    if np.isnan(g_area[cg]).any():
        bad = gu[cg[np.isnan(g_area[cg])]].tolist()
        raise PanopticFormatError(f'image {image_id!r}: GT segments {bad} have no "area"')
    union = ((parea[cp] + g_area[cg]) - cn) - pvoid[cp]
    with np.errstate(divide='ignore', invalid='ignore'):
        iou = cn / union
    hit = iou > 0.5
    rows = g_cat[cg[hit]]
    np.add.at(stats.tp, rows, 1)
    np.add.at(stats.iou, rows, iou[hit])
    g_matched = np.zeros(len(gu), dtype=bool)
    p_matched = np.zeros(len(pu), dtype=bool)
    g_matched[cg[hit]] = True
    p_matched[cp[hit]] = True
    matched_gt = set(gu[g_matched].tolist())

    # False negatives and crowd regions (last crowd segment of a category wins, as in panopticapi).
    crowd_by_cat: dict[Any, int] = {}
    for gid, gseg in gt_table.items():
        if gid in matched_gt:
            continue
        gcat = _category(gseg, gid, 'GT', image_id)
        if gseg.get('iscrowd', 0) == 1:
            crowd_by_cat[gcat] = gid
            continue
        row = category_index.get(gcat)
        if row is not None:  # GT of a category outside the evaluated list never reaches the averages
            stats.fn[row] += 1

    # False positives, excusing predictions mostly on VOID / crowd of their category.
    ignored = pvoid.copy()
    if crowd_by_cat:
        crowd_col = {category_index[c]: gid for c, gid in crowd_by_cat.items() if c in category_index}
        crowd_ids = set(crowd_col.values())
        crowd_pos = {gid: i for i, gid in enumerate(gu_list) if gid in crowd_ids}
        row_of_crowd = np.array([crowd_pos.get(crowd_col.get(c, -1), -1) for c in range(num_cats)] or [-1])
        want = row_of_crowd[np.clip(p_cat[pair_p], 0, None)]
        on_crowd = (p_cat[pair_p] >= 0) & (want >= 0) & (pair_g == want)
        np.add.at(ignored, pair_p[on_crowd], pair_n[on_crowd])
    fp = p_known & ~p_matched & ~(ignored / np.maximum(parea, 1) > 0.5)
    np.add.at(stats.fp, p_cat[fp], 1)
    return stats


def pq_average(stats: PQStats,
               category_ids: Sequence[Any],
               is_thing: Sequence[bool],
               isthing: bool | None = None) -> tuple[dict[str, float], dict[Any, dict[str, float]]]:
    """``PQStat.pq_average``: unweighted mean over categories with ``tp + fp + fn > 0``.

    Returns ``({'pq', 'sq', 'rq', 'n'}, per_class)`` with fractions, per_class keyed by category id (skipped
    categories get 0.0). Unlike panopticapi (ZeroDivisionError) an empty split gives NaN with ``n == 0``.
    """
    pq = sq = rq = 0.0
    n = 0
    per_class: dict[Any, dict[str, float]] = {}
    for k, cid in enumerate(category_ids):
        if isthing is not None and bool(is_thing[k]) != isthing:
            continue
        iou = float(stats.iou[k])
        tp, fp, fn = int(stats.tp[k]), int(stats.fp[k]), int(stats.fn[k])
        if tp + fp + fn == 0:
            per_class[cid] = {'pq': 0.0, 'sq': 0.0, 'rq': 0.0}
            continue
        n += 1
        denom = tp + 0.5 * fp + 0.5 * fn
        pq_c = iou / denom
        sq_c = iou / tp if tp != 0 else 0
        rq_c = tp / denom
        per_class[cid] = {'pq': pq_c, 'sq': sq_c, 'rq': rq_c}
        pq += pq_c
        sq += sq_c
        rq += rq_c
    if n == 0:
        return {'pq': math.nan, 'sq': math.nan, 'rq': math.nan, 'n': 0}, per_class
    return {'pq': pq / n, 'sq': sq / n, 'rq': rq / n, 'n': n}, per_class


def pq_summary(stats: PQStats, category_ids: Sequence[Any], is_thing: Sequence[bool]) -> dict[str, Any]:
    """The dict panopticapi's ``pq_compute`` returns: ``All``, ``Things``, ``Stuff`` and ``per_class``."""
    results: dict[str, Any] = {}
    for name, flag in (('All', None), ('Things', True), ('Stuff', False)):
        results[name], per_class = pq_average(stats, category_ids, is_thing, isthing=flag)
        if name == 'All':
            results['per_class'] = per_class
    return results
