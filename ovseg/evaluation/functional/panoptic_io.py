"""File-based panoptic evaluation in panopticapi format (PNG + JSON), a drop-in for ``pq_compute``.

PNGs are decoded with OpenCV and turned into ids (``R + 256 G + 256² B``) with one colour conversion and a
mask, which is several times cheaper than ``np.array(Image.open(...), dtype=np.uint32)`` + ``rgb2id``.
Images can be spread over worker processes; each worker returns only per-category sums.
"""
from __future__ import annotations

import json
import multiprocessing
import os
import os.path as osp
import sys
from typing import Any, Iterable, Mapping

import cv2
import numpy as np

from .panoptic_quality import PanopticFormatError, PQStats, pq_image_stats, pq_summary

__all__ = [
    'rgb2id', 'id2rgb', 'read_panoptic_png', 'write_panoptic_png', 'pq_compute', 'format_pq_table',
    'panoptic_categories'
]

_LITTLE = sys.byteorder == 'little'


def rgb2id(rgb: np.ndarray) -> np.ndarray:
    """H×W×3 RGB (uint8) -> H×W uint32 ids ``R + 256*G + 256*256*B`` (panopticapi's encoding)."""
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[2] < 3:
        raise ValueError(f'rgb2id expects an H×W×3 array, got shape {rgb.shape}')
    c = rgb[..., :3].astype(np.uint32)
    return c[..., 0] + (c[..., 1] << 8) + (c[..., 2] << 16)


def id2rgb(ids: np.ndarray) -> np.ndarray:
    """H×W ids (< 2**24) -> H×W×3 uint8 RGB, the inverse of :func:`rgb2id`."""
    ids = np.asarray(ids)
    if ids.size and (ids.min() < 0 or ids.max() >= 1 << 24):
        raise ValueError(
            f'segment ids must lie in [0, 2**24) to be stored as RGB, got [{ids.min()}, {ids.max()}]')
    ids = ids.astype(np.uint32)
    return np.stack([ids & 255, (ids >> 8) & 255, (ids >> 16) & 255], axis=-1).astype(np.uint8)


def read_panoptic_png(path: str) -> np.ndarray:
    """Decode a panopticapi PNG into H×W uint32 segment ids (alpha, if any, is ignored like panopticapi)."""
    img = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    if img is None:
        if not osp.isfile(path):
            raise FileNotFoundError(f'panoptic PNG not found: {path}')
        raise ValueError(f'cannot decode panoptic PNG {path}')
    if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] not in (3, 4):
        raise ValueError(
            f'panoptic PNG {path} must be 8-bit RGB(A); got dtype {img.dtype}, shape {img.shape}')
    if not _LITTLE:
        return rgb2id(img[..., 2::-1])
    code = cv2.COLOR_BGR2RGBA if img.shape[2] == 3 else cv2.COLOR_BGRA2RGBA
    rgba = cv2.cvtColor(img, code)  # bytes R, G, B, A -> little-endian uint32 R + G<<8 + B<<16 + A<<24
    ids = rgba.view(np.uint32).reshape(rgba.shape[:2])
    np.bitwise_and(ids, 0x00FFFFFF, out=ids)
    return ids


def write_panoptic_png(path: str, ids: Any) -> None:
    """Write H×W segment ids as a panopticapi RGB PNG (``id2rgb``)."""
    if hasattr(ids, 'detach'):
        ids = ids.detach().cpu().numpy()
    ids = np.asarray(ids)
    if ids.ndim == 3 and ids.shape[0] == 1:
        ids = ids[0]
    rgb = id2rgb(ids)
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    if not cv2.imwrite(path, rgb[..., ::-1]):
        raise OSError(f'could not write panoptic PNG {path}')


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
               chunk_size: int = 8) -> dict[str, Any]:
    """panopticapi ``pq_compute`` with the same inputs, rules, errors and return structure.

    ``gt_json`` / ``pred_json`` are paths or loaded dicts; folders default to the JSON path minus ``.json``.
    Returns ``{'All'|'Things'|'Stuff': {'pq', 'sq', 'rq', 'n'}, 'per_class': {category_id: {...}}}`` with
    fractions. ``workers > 1`` spreads chunks of ``chunk_size`` images over a process pool.
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

    chunks = [pairs[i:i + chunk_size] for i in range(0, len(pairs), max(1, chunk_size))]
    tasks = [(c, gt_folder, pred_folder, category_index) for c in chunks]
    stats = PQStats.zeros(len(cat_ids))
    if workers > 1 and len(chunks) > 1:
        with multiprocessing.get_context().Pool(min(workers, len(chunks))) as pool:
            for part in pool.imap(_evaluate_chunk, tasks):
                stats += part
    else:  # one accumulator, image after image: bit-identical to panopticapi's single-process sums
        for task in tasks:
            _evaluate_chunk(task, stats)
    return pq_summary(stats, cat_ids, is_thing)


def format_pq_table(results: Mapping[str, Any]) -> str:
    """The All/Things/Stuff table panopticapi prints (values ×100)."""
    lines = ['{:10s}| {:>5s}  {:>5s}  {:>5s} {:>5s}'.format('', 'PQ', 'SQ', 'RQ', 'N'), '-' * (10 + 7 * 4)]
    for name in ('All', 'Things', 'Stuff'):
        r = results[name]
        lines.append('{:10s}| {:5.1f}  {:5.1f}  {:5.1f} {:5d}'.format(name, 100 * r['pq'], 100 * r['sq'],
                                                                      100 * r['rq'], r['n']))
    return '\n'.join(lines)
