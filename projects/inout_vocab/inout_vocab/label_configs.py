"""In-/out-of-vocabulary label configurations: delete the segments of chosen thing classes from a panoptic JSON.

Configuration N (0..8 on Cityscapes) deletes the segments of the first N label ids of
:data:`CITYSCAPES_DELETE_ORDER` from every image's ``segments_info`` (the study's table "Conf-ID / deleted
classes", issue 10 part 1). Everything else is kept as is: ``images``, ``categories`` (evaluation always scores
all 19 classes), every other key and every other segment, in their order. PNGs are never touched: a deleted
segment's id stays in its PNG but not in the JSON, so train with ``CocoPanopticDataset(unlisted_segments=
'no_target')`` (the pixels become VOID and give no target, as in FC-CLIP's mapper) and never evaluate on such a
JSON (panopticapi does not treat an id absent from the GT JSON as VOID).

Pure functions on the parsed JSON (standard library only): the converter
``tools/dataset_converters/cityscapes_inout.py`` does the file I/O.
"""
from __future__ import annotations

import copy
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

__all__ = ['CITYSCAPES_DELETE_ORDER', 'CITYSCAPES_CATEGORY_IDS', 'CITYSCAPES_CATEGORY_NAMES', 'config_tag',
           'parse_config_list', 'deleted_ids', 'deleted_class_names', 'delete_segments', 'check_categories']

# Cityscapes label ids of the 19 evaluated classes, as cityscapesscripts' createPanopticImgs writes them into
# ``categories`` (useTrainId=False; labels.py: ignoreInEval=False), with their names there.
CITYSCAPES_CATEGORY_NAMES: dict[int, str] = {
    7: 'road', 8: 'sidewalk', 11: 'building', 12: 'wall', 13: 'fence', 17: 'pole', 19: 'traffic light',
    20: 'traffic sign', 21: 'vegetation', 22: 'terrain', 23: 'sky', 24: 'person', 25: 'rider', 26: 'car',
    27: 'truck', 28: 'bus', 31: 'train', 32: 'motorcycle', 33: 'bicycle'}
CITYSCAPES_CATEGORY_IDS: tuple[int, ...] = tuple(CITYSCAPES_CATEGORY_NAMES)
# The study's deletion order (its configurations 001..008): the 8 thing classes in label-id order.
CITYSCAPES_DELETE_ORDER: tuple[int, ...] = (24, 25, 26, 27, 28, 31, 32, 33)

_ITEM = re.compile(r'^\s*(\d+)\s*(?:-\s*(\d+)\s*)?$')


def config_tag(n: int) -> str:
    """``'003'`` for configuration 3: the study's 3-digit configuration ids, used in the file names."""
    return f'{n:03d}'


def parse_config_list(spec: str, max_config: int = len(CITYSCAPES_DELETE_ORDER)) -> list[int]:
    """Configurations named by ``'0-8'``, ``'0,3,8'`` or ``'2-4,8'``, ascending; each must lie in 0..max_config.

    A repeated configuration (``'0-4,3'``) is an error rather than silently merged: it is almost surely a typo.
    """
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError(f'--configs: empty configuration list; expected e.g. 0-{max_config} or 0,3,{max_config}')
    out: list[int] = []
    for item in spec.split(','):
        m = _ITEM.match(item)
        if m is None:
            raise ValueError(f'--configs: {item.strip()!r} in {spec!r} is not a number or a range A-B '
                             f'(expected e.g. 0-{max_config} or 0,3,{max_config})')
        lo = int(m[1])
        hi = int(m[2]) if m[2] is not None else lo
        if lo > hi:
            raise ValueError(f'--configs: range {item.strip()!r} in {spec!r} runs backwards')
        for n in range(lo, hi + 1):
            if n > max_config:
                raise ValueError(f'--configs: configuration {n} in {spec!r} is outside 0..{max_config} '
                                 f'(the delete order has {max_config} classes)')
            if n in out:
                raise ValueError(f'--configs: configuration {n} is listed twice in {spec!r}')
            out.append(n)
    return sorted(out)


def deleted_ids(n: int, order: Sequence[int] = CITYSCAPES_DELETE_ORDER) -> tuple[int, ...]:
    """Category ids configuration ``n`` deletes: the first ``n`` of ``order``."""
    if isinstance(n, bool) or not isinstance(n, int) or not 0 <= n <= len(order):
        raise ValueError(f'label configuration {n!r} is outside 0..{len(order)} (delete order {list(order)})')
    return tuple(int(i) for i in order[:n])


def _category_names(categories: Iterable[Mapping[str, Any]], where: str) -> dict[int, str]:
    names: dict[int, str] = {}
    for i, cat in enumerate(categories):
        if not isinstance(cat, Mapping) or 'id' not in cat:
            raise ValueError(f"{where}: categories[{i}] has no 'id'")
        names[int(cat['id'])] = str(cat.get('name', cat['id']))
    return names


def deleted_class_names(n: int, categories: Iterable[Mapping[str, Any]],
                        order: Sequence[int] = CITYSCAPES_DELETE_ORDER, where: str = 'categories') -> list[str]:
    """Names of the classes configuration ``n`` deletes, in deletion order (``categories``: the JSON's list)."""
    names = _category_names(categories, where)
    missing = [i for i in deleted_ids(n, order) if i not in names]
    if missing:
        raise ValueError(f'{where}: delete-order id(s) {missing} are not among the category ids '
                         f'{sorted(names)}')
    return [names[i] for i in deleted_ids(n, order)]


def check_categories(raw: Mapping[str, Any], expected_ids: Iterable[int], where: str, *,
                     exact: bool = True) -> None:
    """Raise ``ValueError`` naming ``where`` unless the JSON's category ids are ``expected_ids``.

    ``exact=True`` (Cityscapes with the default delete order): the ids must be exactly the expected ones, so
    a COCO or ADE20K JSON passed by mistake is caught before 9 wrong files are written. ``exact=False`` (a
    custom delete order, e.g. ToyScenes thing ids): the expected ids must merely exist.
    """
    if not isinstance(raw, Mapping) or not isinstance(raw.get('categories'), list):
        raise ValueError(f"{where}: not a COCO panoptic JSON (no 'categories' list)")
    ids = set(_category_names(raw['categories'], where))
    expected = {int(i) for i in expected_ids}
    missing = sorted(expected - ids)
    unknown = sorted(ids - expected) if exact else []
    if missing or unknown:
        what = 'not a Cityscapes panoptic JSON' if exact else 'category ids do not match the delete order'
        parts = []
        if unknown:
            parts.append(f'unknown category id(s) {unknown}')
        if missing:
            parts.append(f'missing category id(s) {missing}')
        raise ValueError(f"{where}: {what}: {'; '.join(parts)} (expected {sorted(expected)}"
                         f"{'' if exact else ' among the categories'})")


def delete_segments(raw: Mapping[str, Any], deleted: Iterable[int],
                    where: str) -> tuple[dict[str, Any], dict[int, dict[str, Any]]]:
    """Copy of ``raw`` without the segments whose ``category_id`` is in ``deleted``, and what was removed.

    Returns ``(new_json, summary)``: ``new_json`` is a deep copy in which only the ``segments_info`` lists
    changed (order kept); ``summary`` maps each deleted category id (in the given order) to ``{name, segments,
    pixels}``, pixels being the sum of the removed segments' ``area`` (the JSON's count; the PNGs are not
    read). A removed segment without ``area``, or any segment whose class is not in ``categories``, is an
    error naming ``where`` and the record.
    """
    if not isinstance(raw, Mapping):
        raise ValueError(f'{where}: top level must be an object with images/annotations/categories')
    for key in ('annotations', 'categories'):
        if not isinstance(raw.get(key), list):
            raise ValueError(f"{where}: missing or non-list field '{key}'")
    names = _category_names(raw['categories'], where)
    deleted = [int(i) for i in deleted]
    unknown = [i for i in deleted if i not in names]
    if unknown:
        raise ValueError(f'{where}: deleted category id(s) {unknown} are not among the category ids {sorted(names)}')
    summary: dict[int, dict[str, Any]] = {i: dict(name=names[i], segments=0, pixels=0) for i in deleted}
    out = copy.deepcopy(dict(raw))
    for a, ann in enumerate(out['annotations']):
        if not isinstance(ann, dict) or not isinstance(ann.get('segments_info'), list):
            raise ValueError(f"{where}: annotations[{a}] has no 'segments_info' list")
        kept = []
        for s, seg in enumerate(ann['segments_info']):
            record = f"annotations[{a}].segments_info[{s}] (image {ann.get('image_id')!r})"
            if not isinstance(seg, dict) or 'category_id' not in seg:
                raise ValueError(f"{where}: {record} has no 'category_id'")
            cat = int(seg['category_id'])
            if cat not in names:
                raise ValueError(f'{where}: {record}.category_id {cat} is not in categories')
            if cat not in summary:
                kept.append(seg)
                continue
            if 'area' not in seg:
                raise ValueError(f"{where}: {record} (category {cat}) has no 'area', needed to count the "
                                 'removed pixels')
            summary[cat]['segments'] += 1
            summary[cat]['pixels'] += int(seg['area'])
        ann['segments_info'] = kept
    return out, summary
