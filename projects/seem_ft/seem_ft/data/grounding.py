"""SEEM's grounding JSON, keyed to panoptic segments: the schema, a validating reader and a writer.

SEEM trains grounding on a RefCOCO-style JSON (``refcoco2json``: COCO images + the referred instance annotations,
each with ``sentences``; SEEM v1.0 ``datasets/utils/refcoco2json.py``) whose masks are polygons, rasterised
before the augmentation. Here an annotation names a **panoptic segment** instead of carrying a polygon: its mask is
``pan_id == segment_id`` of the image's panoptic PNG, so it follows every geometric transform of the panoptic map
(LSJ resize, crop, flip) exactly, and a grounding can never disagree with the panoptic labels.

Schema (``grounding_<split>.json``)::

    {
      "images": [                                   # the images that have groundings (a subset is fine)
        {"id": 1, "file_name": "img_001.jpg", "height": 480, "width": 640}
      ],
      "annotations": [                              # one per referred segment
        {"id": 7,                                   # unique over the file (the REFER ``ref_id``)
         "image_id": 1,                             # an ``images[].id`` (= the panoptic JSON's image id)
         "segment_id": 3001,                        # the segment's id in that image's panoptic PNG / segments_info
         "category_id": 3,                          # optional: the segment's panoptic category id (checked)
         "sentences": [                             # at least one
           {"sent_id": 12,                          # unique over the file
            "raw": "The red ball on the left.",     # as written
            "sent": "the red ball on the left"}     # normalised (lower case, no punctuation; optional)
         ]}
      ],
      "categories": [...]                           # optional, informative (the panoptic JSON's categories rule)
    }

Errors name the file, the image and the segment (:class:`GroundingFormatError`, a
:class:`ovseg.datasets.referring.ReferringRecordError`). The reader (:func:`read_grounding_json`) always raises on
a malformed file: a sentence for an image absent from ``images``, an annotation without sentences, an empty
sentence, duplicate ``id`` / ``sent_id``, a non-positive ``segment_id``. The cross-check (:func:`match_groundings`)
raises, or with the datasets' ``on_bad_record='skip'`` counts and skips, an annotation for an image absent from the
panoptic JSON, for a segment absent from the image's ``segments_info``, with a category that is not the segment's,
or whose image ``file_name`` / size differs from the panoptic JSON's.
"""
from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping, Sequence
from typing import Any

from ovseg.datasets.referring import BadRecords, ReferringRecordError
from ovseg.utils.atomic_io import atomic_write_bytes
from ovseg.utils.json_io import read_json

__all__ = ['GroundingFormatError', 'normalise_sentence', 'read_grounding_json', 'match_groundings',
           'write_grounding_json', 'sentence_text', 'TEXT_FIELDS']

#: How a sentence becomes the training / evaluation text (as :class:`ovseg.datasets.RefCocoDataset`'s ``text``):
#: ``'raw_lower'`` is SEEM's training text (``sentences[k]['raw'].lower()``), ``'sent'`` REFER's normalised one.
TEXT_FIELDS = ('sent', 'raw', 'raw_lower')


class GroundingFormatError(ReferringRecordError):
    """The grounding JSON is malformed or does not match the panoptic annotations; names file, image, segment."""


def normalise_sentence(raw: str) -> str:
    """REFER-style ``sent``: lower case words (letters, digits, apostrophes), single spaces, no punctuation."""
    return ' '.join(re.findall(r"[a-z0-9']+", raw.lower()))


def sentence_text(sentence: Mapping[str, Any], field: str) -> str:
    """The text of one sentence record for ``field`` (one of :data:`TEXT_FIELDS`), stripped; '' if none."""
    if field == 'sent':
        text = sentence.get('sent') or (normalise_sentence(sentence['raw']) if isinstance(sentence.get('raw'), str)
                                        else None)
    else:
        text = sentence.get('raw', sentence.get('sent'))
        if field == 'raw_lower' and isinstance(text, str):
            text = text.lower()
    return text.strip() if isinstance(text, str) else ''


def _is_id(v: Any) -> bool:
    return isinstance(v, (int, str)) and not isinstance(v, bool)


def read_grounding_json(path: str | os.PathLike) -> dict[str, Any]:
    """Read and structurally validate a grounding JSON (schema in the module docstring).

    Returns ``{'images': {id: image}, 'annotations': [annotation, ...]}`` with the annotations in file order.
    Raises :class:`GroundingFormatError` naming the file and the record for anything the schema forbids; the
    cross-check against the panoptic annotations is :func:`match_groundings`.
    """
    path = os.fspath(path)
    raw = read_json(path, 'grounding JSON', expect=dict, error=GroundingFormatError)
    for key in ('images', 'annotations'):
        if not isinstance(raw.get(key), list):
            raise GroundingFormatError(f"{path}: missing or non-list field '{key}' (grounding JSON)")
    images: dict[Any, dict] = {}
    for i, img in enumerate(raw['images']):
        if not isinstance(img, dict) or not _is_id(img.get('id')) or not isinstance(img.get('file_name'), str):
            raise GroundingFormatError(f'{path}: images[{i}] needs an id and a file_name')
        if img['id'] in images:
            raise GroundingFormatError(f"{path}: images[{i}].id {img['id']!r} is duplicated")
        images[img['id']] = img
    ann_ids: set = set()
    sent_ids: set = set()
    for a, ann in enumerate(raw['annotations']):
        if not isinstance(ann, dict):
            raise GroundingFormatError(f'{path}: annotations[{a}] is not an object')
        where = (f"{path}: annotations[{a}] (id {ann.get('id')!r}, image {ann.get('image_id')!r}, segment "
                 f"{ann.get('segment_id')!r})")
        for key in ('id', 'image_id', 'segment_id'):
            if not _is_id(ann.get(key)):
                raise GroundingFormatError(f"{where}: needs '{key}'")
        if isinstance(ann['segment_id'], str) or ann['segment_id'] <= 0:
            raise GroundingFormatError(f'{where}: segment_id must be a positive integer (0 is VOID)')
        if ann['id'] in ann_ids:
            raise GroundingFormatError(f"{where}: id {ann['id']!r} is duplicated")
        ann_ids.add(ann['id'])
        if ann['image_id'] not in images:
            raise GroundingFormatError(f"{where}: image {ann['image_id']!r} is not in 'images'", 'missing image')
        sentences = ann.get('sentences')
        if not isinstance(sentences, list) or not sentences:
            raise GroundingFormatError(f'{where}: has no sentences', 'no sentences')
        for s, sent in enumerate(sentences):
            if not isinstance(sent, dict) or not _is_id(sent.get('sent_id')):
                raise GroundingFormatError(f'{where}: sentences[{s}] needs a sent_id')
            if sent['sent_id'] in sent_ids:
                raise GroundingFormatError(f"{where}: sent_id {sent['sent_id']!r} is duplicated", 'duplicate sent_id')
            sent_ids.add(sent['sent_id'])
            if not sentence_text(sent, 'raw'):
                raise GroundingFormatError(f"{where}: sent_id {sent['sent_id']!r} has an empty sentence",
                                           'empty sentence')
    return {'images': images, 'annotations': list(raw['annotations'])}


def match_groundings(grounding: Mapping[str, Any], panoptic: Sequence[Mapping[str, Any]], source: str,
                     category_ids: Mapping[int, int] | None = None,
                     bad: BadRecords | None = None) -> dict[Any, list[dict]]:
    """Check a read grounding JSON against panoptic data infos; returns ``{img_id: [annotation, ...]}``.

    Args:
        grounding: :func:`read_grounding_json`'s result.
        panoptic: :class:`ovseg.datasets.CocoPanopticDataset` data infos (``img_id``, ``img_path``, ``height``,
            ``width``, ``segments_info`` with contiguous ``category_id``); an image's ``file_name`` must have the
            base name of its ``img_path`` and its size the info's (else the two JSONs do not belong together).
        source: the grounding file, for messages.
        category_ids: contiguous index → dataset category id, to check an annotation's ``category_id``.
        bad: the ``on_bad_record`` policy (default: raise).
    """
    bad = bad if bad is not None else BadRecords('raise', 'match_groundings')
    infos = {info['img_id']: info for info in panoptic}
    out: dict[Any, list[dict]] = {}
    for ann in grounding['annotations']:
        image_id, sid = ann['image_id'], int(ann['segment_id'])
        where = f"{source}: annotation {ann['id']!r} (image {image_id!r}, segment {sid})"
        info = infos.get(image_id)
        if info is None:
            bad.error(GroundingFormatError(f'{where}: image {image_id!r} is not annotated in the panoptic JSON',
                                           'image absent from panoptic JSON'))
            continue
        mismatch = _image_mismatch(grounding['images'][image_id], info)
        if mismatch:
            bad.error(GroundingFormatError(f'{where}: {mismatch} (do the grounding and panoptic JSONs belong '
                                           'together?)', 'image mismatch'))
            continue
        segment = next((s for s in info['segments_info'] if int(s['id']) == sid), None)
        if segment is None:
            bad.error(GroundingFormatError(f'{where}: segment {sid} is not in the segments_info of image '
                                           f'{image_id!r} (panoptic PNG {info.get("seg_map_path")!r})',
                                           'segment absent from panoptic JSON'))
            continue
        if ann.get('category_id') is not None and category_ids is not None:
            expected = category_ids[int(segment['category_id'])]
            if int(ann['category_id']) != expected:
                bad.error(GroundingFormatError(f"{where}: category_id {ann['category_id']} is not the segment's "
                                               f'category {expected}', 'category mismatch'))
                continue
        out.setdefault(image_id, []).append(dict(ann, segment=segment))
    return out


def _image_mismatch(img: Mapping[str, Any], info: Mapping[str, Any]) -> str | None:
    """Why a grounding image record does not describe the panoptic data info's image, or None."""
    ours, theirs = os.path.basename(str(img['file_name'])), os.path.basename(str(info.get('img_path', '')))
    if info.get('img_path') and ours != theirs:
        return f'file_name {img["file_name"]!r} is not the panoptic image {theirs!r}'
    for dim in ('height', 'width'):
        if img.get(dim) is not None and info.get(dim) and int(img[dim]) != int(info[dim]):
            return f'{dim} {img[dim]} differs from the panoptic JSON\'s {info[dim]}'
    return None


def write_grounding_json(path: str | os.PathLike, images: Sequence[Mapping[str, Any]],
                         annotations: Sequence[Mapping[str, Any]],
                         categories: Sequence[Mapping[str, Any]] | None = None) -> None:
    """Write a grounding JSON atomically (keys sorted, compact), after the structural checks of the reader."""
    doc: dict[str, Any] = {'images': list(images), 'annotations': list(annotations)}
    if categories is not None:
        doc['categories'] = list(categories)
    data = json.dumps(doc, sort_keys=True, separators=(',', ':')).encode('utf-8')
    atomic_write_bytes(path, data, sync_dir=False)
    read_grounding_json(path)  # what we write must read back
