"""RefCOCO / RefCOCO+ / RefCOCOg annotations (the REFER toolkit layout) as plain records, without the toolkit.

Layout: ``<data_root>/<dataset>/refs(<split_by>).p`` (a Python-2 pickle: a list of ``{ref_id, ann_id, image_id,
category_id, split, sent_ids, sentences: [{raw, sent, sent_id, tokens}]}``) and ``<data_root>/<dataset>/instances.json``
(COCO instances with polygon / RLE ``segmentation``). The pickle is read with :func:`load_plain_pickle`, which refuses
anything but plain data. Two outputs:

* the grounding JSON SEEM trains and evaluates on (its ``refcoco2json`` layout: COCO ``images`` + the ``annotations``
  of the referred instances, each updated with its ref's ``ref_id, split, sent_ids, sentences``);
* the GT file of ``tools/analysis/eval_refseg.py``: one ``{sent_id, image_id, segmentation (RLE)}`` per sentence.

Split selection follows REFER's ``getRefIds``: ``testA/testB/testC`` select refs whose split contains the letter,
``test`` every split containing "test", other names exact matches.
"""
from __future__ import annotations

import json
import os
import os.path as osp
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ovseg.utils.plain_pickle import load_plain_pickle

__all__ = ['REFER_DATASETS', 'ReferFormatError', 'refs_path', 'load_refs', 'select_refs', 'refer_grounding_json',
           'grounding_refseg_gt', 'annotation_rle', 'read_instances']

#: Dataset folder → default ``split_by`` (REFER README; Sa2VA uses unc / unc / umd).
REFER_DATASETS = {'refcoco': 'unc', 'refcoco+': 'unc', 'refcocog': 'umd'}


class ReferFormatError(ValueError):
    """A REFER file does not hold what the toolkit writes; the message names the file and record."""


def refs_path(data_root: str | os.PathLike, dataset: str, split_by: str | None = None) -> str:
    """``<data_root>/<dataset>/refs(<split_by>).p`` with the dataset's default ``split_by``."""
    if split_by is None:
        if dataset not in REFER_DATASETS:
            raise ValueError(f'unknown REFER dataset {dataset!r}: give split_by, or one of {sorted(REFER_DATASETS)}')
        split_by = REFER_DATASETS[dataset]
    return osp.join(os.fspath(data_root), dataset, f'refs({split_by}).p')


def load_refs(path: str | os.PathLike) -> list[dict]:
    """The refs list of a REFER pickle, each ref checked for the fields the readers use."""
    refs = load_plain_pickle(path)
    if not isinstance(refs, list):
        raise ReferFormatError(f'{os.fspath(path)}: expected a list of refs, got {type(refs).__name__}')
    for i, ref in enumerate(refs):
        if not isinstance(ref, dict):
            raise ReferFormatError(f'{os.fspath(path)}: ref {i} is a {type(ref).__name__}, expected a dict')
        missing = [k for k in ('ref_id', 'ann_id', 'image_id', 'split', 'sentences') if k not in ref]
        if missing:
            raise ReferFormatError(f"{os.fspath(path)}: ref {i} (ref_id {ref.get('ref_id')!r}) lacks {missing}")
        for s in ref['sentences']:
            if not isinstance(s, dict) or 'sent_id' not in s:
                raise ReferFormatError(f"{os.fspath(path)}: ref_id {ref['ref_id']!r}: a sentence without sent_id")
    return refs


def select_refs(refs: Iterable[Mapping], split: str | None) -> list[Mapping]:
    """REFER ``getRefIds(split=...)``: ``None`` keeps all."""
    refs = list(refs)
    if split is None:
        return refs
    if split in ('testA', 'testB', 'testC'):
        return [r for r in refs if split[-1] in r['split']]
    if split == 'test':
        return [r for r in refs if 'test' in r['split']]
    return [r for r in refs if r['split'] == split]


def refer_grounding_json(refs: Sequence[Mapping], instances: Mapping[str, Any], split: str | None,
                         source: str = 'instances.json') -> dict[str, Any]:
    """SEEM's grounding JSON for the refs of ``split``: COCO images + referred annotations merged with their ref.

    Every ref must point at an existing annotation and image (else :class:`ReferFormatError` naming ``source`` and
    the ref); a sentence id may appear once; empty sentences are errors.
    """
    anns = {a['id']: a for a in instances.get('annotations', [])}
    images = {im['id']: im for im in instances.get('images', [])}
    out_anns, used_images, seen_sents = [], {}, set()
    for ref in select_refs(refs, split):
        where = f"{source}: ref_id {ref['ref_id']!r}"
        ann = anns.get(ref['ann_id'])
        if ann is None:
            raise ReferFormatError(f"{where}: ann_id {ref['ann_id']!r} is not an annotation of {source}")
        image = images.get(ref['image_id'])
        if image is None or ann.get('image_id') != ref['image_id']:
            raise ReferFormatError(f"{where}: image_id {ref['image_id']!r} missing from {source} or not the image "
                                   f"of ann_id {ref['ann_id']!r}")
        for s in ref['sentences']:
            if s['sent_id'] in seen_sents:
                raise ReferFormatError(f"{where}: sent_id {s['sent_id']!r} appears twice")
            if not str(s.get('sent', s.get('raw', ''))).strip():
                raise ReferFormatError(f"{where}: sent_id {s['sent_id']!r} has an empty sentence")
            seen_sents.add(s['sent_id'])
        merged = dict(ann)
        merged.update(ann_id=ann['id'], ref_id=ref['ref_id'], split=ref['split'],
                      sent_ids=[s['sent_id'] for s in ref['sentences']], sentences=list(ref['sentences']))
        out_anns.append(merged)
        used_images[image['id']] = image
    if not out_anns:
        raise ReferFormatError(f'{source}: no refs in split {split!r}')
    return {'images': list(used_images.values()), 'annotations': out_anns,
            'categories': list(instances.get('categories', []))}


def annotation_rle(ann: Mapping[str, Any], height: int, width: int, where: str = '') -> dict:
    """Compressed RLE of a COCO annotation's polygons / RLE (pycocotools ``annToRLE``), counts as str."""
    from pycocotools import mask as mask_util
    seg = ann.get('segmentation')
    if isinstance(seg, list):
        if not seg or not all(isinstance(p, list) and len(p) >= 6 and len(p) % 2 == 0 for p in seg):
            raise ReferFormatError(f'{where}: polygons must be lists of ≥ 3 (x, y) pairs')
        rle = mask_util.merge(mask_util.frPyObjects(seg, height, width))
    elif isinstance(seg, Mapping) and 'counts' in seg:
        rle = mask_util.frPyObjects(seg, height, width) if isinstance(seg['counts'], list) else dict(seg)
    else:
        raise ReferFormatError(f'{where}: no polygon or RLE segmentation')
    if isinstance(rle['counts'], bytes):
        rle['counts'] = rle['counts'].decode('ascii')
    return {'size': [int(v) for v in rle['size']], 'counts': rle['counts']}


def grounding_refseg_gt(grounding: Mapping[str, Any], source: str = 'grounding.json') -> dict[str, list]:
    """``{"annotations": [{sent_id, image_id, segmentation}]}`` (one per sentence) for eval_refseg.py."""
    images = {im['id']: im for im in grounding['images']}
    out = []
    for ann in grounding['annotations']:
        im = images[ann['image_id']]
        rle = annotation_rle(ann, int(im['height']), int(im['width']), f"{source}: annotation {ann.get('id')!r}")
        out.extend({'sent_id': s['sent_id'], 'image_id': ann['image_id'], 'segmentation': rle}
                   for s in ann['sentences'])
    return {'annotations': out}


def read_instances(path: str | os.PathLike) -> dict[str, Any]:
    """COCO instances JSON with a clear error for a missing or malformed file."""
    try:
        with open(path, encoding='utf-8') as f:
            data = json.load(f)
    except FileNotFoundError:
        raise FileNotFoundError(f'{os.fspath(path)}: no such file (REFER instances.json)') from None
    except json.JSONDecodeError as e:
        raise ReferFormatError(f'{os.fspath(path)}: not valid JSON ({e})') from None
    if not isinstance(data, dict) or 'annotations' not in data or 'images' not in data:
        raise ReferFormatError(f'{os.fspath(path)}: expected COCO instances with "images" and "annotations"')
    return data
