"""Referring-segmentation evaluation of RLE files: the ``tools/analysis/eval_refseg.py`` core.

Formats (one record per sentence; masks as COCO RLE, ``counts`` compressed str/bytes or an uncompressed list):

* GT: ``{"annotations": [{"sent_id", "image_id", "segmentation": RLE}, ...]}``
* predictions: ``[{"sent_id", "segmentation": RLE or null}, ...]``; ``null`` (the model produced no ``[SEG]``) and
  a sentence missing from the file both mean "no mask".

Scoring is :mod:`.referring` (LISA / Sa2VA): per sentence foreground ``I`` and ``U``, cIoU = ΣI / ΣU, gIoU = mean of
``I / (U + 1e-5)`` with an empty union counting 1. ``I`` and ``U`` come straight from the RLEs (pycocotools' merge and
area), without decoding a mask. ``skip_missing_for_ciou=True`` is Sa2VA's evaluation script rule: a sentence
without a predicted mask adds nothing to ΣI and ΣU (its GT area is not counted) and counts 0 in gIoU.
"""
from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

from .referring import GIOU_EPS, ReferringStats, referring_summary

__all__ = ['RefSegFormatError', 'load_refseg_gt', 'load_refseg_predictions', 'refseg_stats', 'evaluate_refseg_files']


class RefSegFormatError(ValueError):
    """A GT or prediction file does not follow the documented format; the message names file and record."""


def _mask_api():
    from pycocotools import mask as mask_util  # lazy: keeps `import ovseg.evaluation.functional` light
    return mask_util


def _read_json(path: str | os.PathLike) -> Any:
    try:
        with open(path, encoding='utf-8') as f:
            return json.load(f)
    except FileNotFoundError:
        raise FileNotFoundError(f'{os.fspath(path)}: no such file') from None
    except json.JSONDecodeError as e:
        raise RefSegFormatError(f'{os.fspath(path)}: not valid JSON ({e})') from None


def _rle(obj: Any, where: str) -> dict:
    """Validate one RLE and return it compressed (``counts`` bytes), as pycocotools' merge/area expect."""
    if not isinstance(obj, Mapping) or 'size' not in obj or 'counts' not in obj:
        raise RefSegFormatError(f'{where}: segmentation must be an RLE dict with "size" and "counts", got '
                                f'{type(obj).__name__}')
    size = obj['size']
    if (not isinstance(size, (list, tuple)) or len(size) != 2
            or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in size)):
        raise RefSegFormatError(f'{where}: RLE "size" must be [height, width] (non-negative ints), got {size!r}')
    h, w = int(size[0]), int(size[1])
    counts = obj['counts']
    if isinstance(counts, list):  # uncompressed RLE
        if not all(isinstance(c, int) and c >= 0 for c in counts) or sum(counts) != h * w:
            raise RefSegFormatError(f'{where}: uncompressed RLE counts must be non-negative ints summing to '
                                    f'height*width = {h * w}')
        return _mask_api().frPyObjects({'size': [h, w], 'counts': counts}, h, w)
    if isinstance(counts, str):
        counts = counts.encode('ascii', errors='strict') if counts.isascii() else None
    if not isinstance(counts, bytes):
        raise RefSegFormatError(f'{where}: RLE "counts" must be an ASCII string, bytes or a list of ints')
    rle = {'size': [h, w], 'counts': counts}
    try:  # pycocotools does not validate compressed counts: check the run lengths before using them
        if _decoded_length(counts) != h * w:
            raise ValueError(f'run lengths do not sum to height*width = {h * w}')
    except ValueError as e:
        raise RefSegFormatError(f'{where}: malformed compressed RLE ({e})') from None
    return rle


def _decoded_length(counts: bytes) -> int:
    """Sum of the run lengths of a compressed COCO RLE string (the LEB128-like scheme of maskApi.c rleFrString)."""
    total, p, m = 0, 0, 0
    cnts: list[int] = []
    while p < len(counts):
        x, k, more = 0, 0, True
        while more:
            if p >= len(counts):
                raise ValueError('truncated counts string')
            c = counts[p] - 48
            if c < 0 or c > 63:
                raise ValueError(f'invalid character {chr(counts[p])!r}')
            x |= (c & 0x1f) << (5 * k)
            more = bool(c & 0x20)
            p += 1
            k += 1
            if not more and (c & 0x10):
                x |= -1 << (5 * k)
        if m > 2:
            x += cnts[m - 2]
        if x < 0:
            raise ValueError('negative run length')
        cnts.append(x)
        total += x
        m += 1
    return total


def load_refseg_gt(path: str | os.PathLike) -> dict[Any, tuple[Any, dict]]:
    """``{sent_id: (image_id, compressed RLE)}`` from a GT file; duplicate or missing fields are errors."""
    data = _read_json(path)
    if not isinstance(data, Mapping) or not isinstance(data.get('annotations'), list):
        raise RefSegFormatError(f'{os.fspath(path)}: expected {{"annotations": [...]}}')
    out: dict[Any, tuple[Any, dict]] = {}
    for i, rec in enumerate(data['annotations']):
        where = f'{os.fspath(path)}: annotations[{i}]'
        if not isinstance(rec, Mapping):
            raise RefSegFormatError(f'{where}: expected an object')
        for key in ('sent_id', 'image_id', 'segmentation'):
            if key not in rec:
                raise RefSegFormatError(f'{where}: missing "{key}"')
        sid = rec['sent_id']
        if sid in out:
            raise RefSegFormatError(f'{where}: duplicate sent_id {sid!r}')
        out[sid] = (rec['image_id'], _rle(rec['segmentation'], f'{where} (sent_id {sid!r})'))
    if not out:
        raise RefSegFormatError(f'{os.fspath(path)}: no annotations')
    return out


def load_refseg_predictions(path: str | os.PathLike, gt: Mapping[Any, tuple[Any, dict]]) -> dict[Any, dict | None]:
    """``{sent_id: RLE or None}``; an unknown or duplicate sent_id or a size unlike the GT's is an error."""
    data = _read_json(path)
    if not isinstance(data, list):
        raise RefSegFormatError(f'{os.fspath(path)}: expected a list of {{"sent_id", "segmentation"}} records')
    out: dict[Any, dict | None] = {}
    for i, rec in enumerate(data):
        where = f'{os.fspath(path)}: record {i}'
        if not isinstance(rec, Mapping) or 'sent_id' not in rec:
            raise RefSegFormatError(f'{where}: expected an object with "sent_id"')
        sid = rec['sent_id']
        if sid not in gt:
            raise RefSegFormatError(f'{where}: sent_id {sid!r} is not in the GT file')
        if sid in out:
            raise RefSegFormatError(f'{where}: duplicate sent_id {sid!r}')
        seg = rec.get('segmentation')
        if seg is None:
            out[sid] = None
            continue
        rle = _rle(seg, f'{where} (sent_id {sid!r})')
        if list(rle['size']) != list(gt[sid][1]['size']):
            raise RefSegFormatError(f"{where} (sent_id {sid!r}): mask size {rle['size']} != GT size "
                                    f"{gt[sid][1]['size']}")
        out[sid] = rle
    return out


def refseg_stats(gt: Mapping[Any, tuple[Any, dict]], preds: Mapping[Any, dict | None],
                 skip_missing_for_ciou: bool = False) -> tuple[ReferringStats, int]:
    """Sums over every GT sentence and the number of sentences without a predicted mask."""
    mask_util = _mask_api()
    stats = ReferringStats()
    missing = 0
    for sid, (_, gt_rle) in gt.items():
        pred = preds.get(sid)
        gt_area = int(mask_util.area(gt_rle))
        if pred is None:
            missing += 1
            stats.count += 1
            if skip_missing_for_ciou:
                continue  # Sa2VA's script: nothing enters ΣI/ΣU, IoU 0 in gIoU
            inter, union = 0, gt_area
        else:
            inter = int(mask_util.area(mask_util.merge([pred, gt_rle], intersect=True)))
            union = int(mask_util.area(pred)) + gt_area - inter
            stats.count += 1
        stats.intersection += inter
        stats.union += union
        stats.iou_sum += 1.0 if union == 0 else inter / (union + GIOU_EPS)
    return stats, missing


def evaluate_refseg_files(gt_path: str | os.PathLike, pred_path: str | os.PathLike,
                          skip_missing_for_ciou: bool = False) -> dict[str, Any]:
    """``{"cIoU", "gIoU" (fractions), "num_sentences", "num_missing"}`` of a prediction file against a GT file."""
    gt = load_refseg_gt(gt_path)
    preds = load_refseg_predictions(pred_path, gt)
    stats, missing = refseg_stats(gt, preds, skip_missing_for_ciou)
    summary = referring_summary(stats)
    return {'cIoU': summary['cIoU'], 'gIoU': summary['gIoU'], 'num_sentences': summary['num_expressions'],
            'num_missing': missing}
