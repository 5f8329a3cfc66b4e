"""File-based panoptic evaluation in panopticapi format (PNG + JSON), a drop-in for ``pq_compute``.

PNGs are decoded by :func:`ovseg.structures.panoptic_format.read_panoptic_png` (OpenCV, one colour
conversion and a mask: several times cheaper than PIL + ``rgb2id``). Images can be spread over workers;
each worker returns only per-category sums.
"""
from __future__ import annotations

import json
import math
import multiprocessing
import os
import os.path as osp
from collections.abc import Iterable, Mapping
from typing import Any

from ovseg.structures.panoptic_format import read_panoptic_png

from .panoptic_quality import PanopticFormatError, PQStats, pq_image_stats, pq_summary

__all__ = ['pq_compute', 'format_pq_table', 'panoptic_categories']


def panoptic_categories(categories: Iterable[Mapping[str, Any]]) -> tuple[list[Any], list[bool]]:
    """Category ids (JSON order, duplicates last-wins like a dict) and their ``isthing`` flags."""
    table: dict[Any, Mapping[str, Any]] = {}
    for i, cat in enumerate(categories):
        if 'id' not in cat:
            raise ValueError(f'categories[{i}] has no "id": {cat!r}')
        table[cat['id']] = cat
    ids = list(table)
    flags = []
    for cid in ids:
        if 'isthing' not in table[cid]:
            raise ValueError(f'category {cid!r} has no "isthing" field')
        flags.append(table[cid]['isthing'] == 1)
    return ids, flags


def _evaluate_chunk(args: tuple[list[tuple[Mapping, Mapping]], str, str, dict[Any, int]],
                    total: PQStats | None = None) -> PQStats:
    """Worker: per-category sums over a chunk of (gt annotation, pred annotation) pairs."""
    pairs, gt_folder, pred_folder, category_index = args
    if total is None:
        total = PQStats.zeros(max(category_index.values(), default=-1) + 1)
    for gt_ann, pred_ann in pairs:
        image_id = gt_ann['image_id']
        gt = read_panoptic_png(osp.join(gt_folder, gt_ann['file_name']))
        pred = read_panoptic_png(osp.join(pred_folder, pred_ann['file_name']))
        pq_image_stats(gt,
                       gt_ann['segments_info'],
                       pred,
                       pred_ann['segments_info'],
                       category_index,
                       image_id=image_id,
                       out=total)
    return total


def _load_json(obj: str | os.PathLike | Mapping[str, Any]) -> Mapping[str, Any]:
    if isinstance(obj, Mapping):
        return obj
    with open(obj) as f:
        return json.load(f)


def _default_folder(json_file: Any, folder: str | None, what: str) -> str:
    if folder is not None:
        return str(folder)
    if isinstance(json_file, Mapping):
        raise ValueError(f'{what}_folder is required when the {what} JSON is given as a dict')
    return str(json_file).replace('.json', '')


def pq_compute(gt_json: str | os.PathLike | Mapping[str, Any],
               pred_json: str | os.PathLike | Mapping[str, Any],
               gt_folder: str | None = None,
               pred_folder: str | None = None,
               workers: int = 1,
               chunk_size: int | None = None) -> dict[str, Any]:
    """panopticapi ``pq_compute`` with the same inputs, rules, errors and return structure.

    ``gt_json`` / ``pred_json`` are paths or loaded dicts; folders default to the JSON path minus ``.json``.
    Returns ``{'All'|'Things'|'Stuff': {'pq', 'sq', 'rq', 'n'}, 'per_class': {category_id: {...}}}`` with
    fractions. ``workers > 1`` spreads chunks of ``chunk_size`` images (default: about four chunks per worker,
    so workers finish together) over a process pool; ``workers=1`` sums image after image in one accumulator,
    bit-identical to panopticapi's single-process result.
    """
    gt = _load_json(gt_json)
    pred = _load_json(pred_json)
    gt_folder = _default_folder(gt_json, gt_folder, 'gt')
    pred_folder = _default_folder(pred_json, pred_folder, 'pred')
    if not osp.isdir(gt_folder):
        raise FileNotFoundError(f"Folder {gt_folder} with ground truth segmentations doesn't exist")
    if not osp.isdir(pred_folder):
        raise FileNotFoundError(f"Folder {pred_folder} with predicted segmentations doesn't exist")
    cat_ids, is_thing = panoptic_categories(gt['categories'])
    category_index = {cid: k for k, cid in enumerate(cat_ids)}

    for what, doc in (('ground-truth', gt), ('prediction', pred)):
        # panopticapi keeps the last of two annotations with one image_id: one image silently scored twice
        # (GT) or a prediction silently dropped (pred). Both are broken files.
        seen: dict[Any, int] = {}
        for k, ann in enumerate(doc['annotations']):
            if ann['image_id'] in seen:
                raise PanopticFormatError(f"{what} JSON: image_id {ann['image_id']!r} appears twice "
                                          f"(annotations[{seen[ann['image_id']]}] and annotations[{k}])")
            seen[ann['image_id']] = k
    pred_by_image = {ann['image_id']: ann for ann in pred['annotations']}
    pairs = []
    for gt_ann in gt['annotations']:
        image_id = gt_ann['image_id']
        if image_id not in pred_by_image:
            raise PanopticFormatError(f'no prediction for the image with id: {image_id}')
        pairs.append((gt_ann, pred_by_image[image_id]))

    stats = PQStats.zeros(len(cat_ids))
    workers = max(1, min(workers, len(pairs)))
    if workers > 1:
        size = chunk_size or max(1, math.ceil(len(pairs) / (4 * workers)))
        tasks = [(pairs[i:i + size], gt_folder, pred_folder, category_index) for i in range(0, len(pairs), size)]
        with multiprocessing.get_context().Pool(min(workers, len(tasks))) as pool:
            for part in pool.imap(_evaluate_chunk, tasks):  # in order: the sum does not depend on timing
                stats += part
    else:
        _evaluate_chunk((pairs, gt_folder, pred_folder, category_index), stats)
    return pq_summary(stats, cat_ids, is_thing)


def format_pq_table(results: Mapping[str, Any]) -> str:
    """The All/Things/Stuff table panopticapi prints (values ×100)."""
    lines = ['{:10s}| {:>5s}  {:>5s}  {:>5s} {:>5s}'.format('', 'PQ', 'SQ', 'RQ', 'N'), '-' * (10 + 7 * 4)]
    for name in ('All', 'Things', 'Stuff'):
        r = results[name]
        lines.append('{:10s}| {:5.1f}  {:5.1f}  {:5.1f} {:5d}'.format(name, 100 * r['pq'], 100 * r['sq'],
                                                                      100 * r['rq'], r['n']))
    return '\n'.join(lines)
