"""``Sa2VAFinetuneDataset``: users' own referring-segmentation data in Sa2VA's fine-tune JSON.

Format (Sa2VA v2 ``docs/finetune.md``, ``projects/sa2va/datasets/sa2va_finetune_dataset.py``)::

    <data_root>/annotations.json   [{"image": "a.jpg",
                                     "mask": [[[x1, y1, x2, y2, ...], ...],   # object 0: its polygons
                                              [[...]]],                       # object 1
                                     "text": ["the dog on the left", "the red car"]}, ...]
    <data_root>/images/a.jpg

Each object is a list of polygons (their union is the object's mask, as Sa2VA's loader sums the decoded
polygons), and ``text[k]`` describes ``mask[k]``. Sa2VA lower-cases every text and strips one trailing ``.``;
``normalize_text=True`` (default) does the same. One sample is one image with all its objects (Sa2VA asks about
every object of the image in one multi-turn conversation); ``group='sentence'`` gives one object per sample.

Outputs are those of :class:`ovseg.datasets.referring.RefCocoDataset` (``mask_rles`` for
``LoadReferringAnnotations``, then ``gt_masks`` + ``expressions`` / ``sent_ids`` from ``PackReferringInputs``), so
the same pipelines, models and ``ReferringSegMetric`` apply. ``img_id`` is the record's index in the file and
``sent_id`` the object's running index over the whole file (entries of ``mask``, counted in bad records too, so
ids are stable while the file is unchanged).

Bad records (fields missing or of the wrong type, as many masks as texts not given, a polygon with fewer than 3
points or outside the image, an empty mask or text, a missing or unreadable image) raise an error naming the file,
the record and the object, or with ``on_bad_record='skip'`` are skipped (the whole record), counted per reason and
logged at construction. Image sizes come from the image headers, read once at construction.
"""
from __future__ import annotations

import os.path as osp
from typing import Any

from mmengine.dataset import BaseDataset
from mmengine.logging import print_log
from PIL import Image

from ovseg.datasets.builder import build_pipeline
from ovseg.datasets.referring import (
    POLYGON_TOLERANCE,
    BadRecords,
    ReferringRecordError,
    group_expressions,
    segmentation_rle,
)
from ovseg.datasets.sample_seed import SeededSampleMixin
from ovseg.registry import DATASETS
from ovseg.utils.json_io import read_json

__all__ = ['Sa2VAFinetuneDataset', 'normalize_finetune_text']


def normalize_finetune_text(text: str) -> str:
    """Sa2VA's phrase clean-up: lower case, one trailing period removed (``phrase[:-1]`` if it ends with '.')."""
    phrase = text.strip().lower()
    return phrase[:-1].rstrip() if phrase.endswith('.') else phrase


@DATASETS.register_module()
class Sa2VAFinetuneDataset(SeededSampleMixin, BaseDataset):
    """Sa2VA fine-tune JSON as referring-segmentation samples.

    Args:
        data_root: the dataset folder (Sa2VA's example: ``data/my_data``).
        ann_file: the annotation list, relative to ``data_root`` (default ``annotations.json``, Sa2VA's name).
        img_prefix: image folder, relative to ``data_root`` (default ``images``, Sa2VA's ``data_prefix``).
        group: ``'image'`` (default: all objects of an image in one sample, as Sa2VA) or ``'sentence'``.
        normalize_text: lower-case and strip a trailing period as Sa2VA (``False``: texts kept as written).
        on_bad_record: ``'raise'`` (default) or ``'skip'`` (counted per reason, ``dataset.skipped``).
        polygon_tolerance: pixels a vertex may lie outside the image (``ovseg.datasets.referring``).
        Other args as :class:`mmengine.dataset.BaseDataset`.
    """

    METAINFO: dict = dict(task='referring_segmentation')

    def __init__(self, data_root: str = '', ann_file: str = 'annotations.json', img_prefix: str = 'images',
                 group: str = 'image', normalize_text: bool = True, on_bad_record: str = 'raise',
                 polygon_tolerance: float = POLYGON_TOLERANCE, **kwargs: Any) -> None:
        if group not in ('image', 'sentence'):
            raise ValueError(f"{type(self).__name__}: group must be 'image' or 'sentence', got {group!r}")
        self.group = group
        self.normalize_text = normalize_text
        self.polygon_tolerance = float(polygon_tolerance)
        self.bad = BadRecords(on_bad_record, type(self).__name__)
        kwargs['pipeline'] = build_pipeline(kwargs.get('pipeline'))
        super().__init__(ann_file=ann_file, data_root=data_root, data_prefix=dict(img=img_prefix), **kwargs)

    @property
    def skipped(self) -> dict[str, int]:
        """Records skipped at construction, per reason (``on_bad_record='skip'``)."""
        return dict(self.bad.counts)

    def load_data_list(self) -> list[dict]:
        path = self.ann_file
        items = read_json(path, f'{type(self).__name__}: a list of {{"image", "mask", "text"}} records',
                          expect=list, error=ReferringRecordError)
        records: list[dict] = []
        sent_id = 0
        for i, item in enumerate(items):
            first_sent = sent_id
            sent_id += _num_objects(item)
            try:
                records.extend(self._parse(item, i, path, first_sent))
            except ReferringRecordError as e:
                self.bad.error(e)
        if not records:
            raise ReferringRecordError(f'{path}: no usable record (skipped: {self.bad.summary()})')
        data_list = group_expressions(records, self.group)
        print_log(f'{type(self).__name__} {path}: {len(records)} objects in {len({r["img_id"] for r in records})} '
                  f'images ({len(data_list)} samples, group={self.group!r}); skipped records: {self.bad.summary()}',
                  logger='current')
        return data_list

    def _parse(self, item: Any, i: int, path: str, first_sent: int) -> list[dict]:
        """Per-object records of one annotation record; any problem raises :class:`ReferringRecordError`."""
        where = f'{path}: record {i}'
        if not isinstance(item, dict):
            raise ReferringRecordError(f'{where}: expected an object with "image", "mask", "text"', 'bad record')
        missing = [k for k in ('image', 'mask', 'text') if k not in item]
        if missing:
            raise ReferringRecordError(f'{where}: missing field(s) {missing}', 'missing field')
        image, masks, texts = item['image'], item['mask'], item['text']
        if not isinstance(image, str) or not image:
            raise ReferringRecordError(f'{where}: "image" must be a file name, got {image!r}', 'bad field')
        where = f'{where} (image {image!r})'
        if not isinstance(masks, list) or not isinstance(texts, list):
            raise ReferringRecordError(f'{where}: "mask" and "text" must be lists (one entry per object)', 'bad field')
        if len(masks) != len(texts):
            raise ReferringRecordError(f'{where}: {len(masks)} masks but {len(texts)} texts; each object needs '
                                       'one mask (a list of polygons) and one text', 'masks != texts')
        if not masks:
            raise ReferringRecordError(f'{where}: no object (empty "mask" and "text")', 'no object')
        img_path = osp.join(self.data_prefix['img'], image)
        try:
            with Image.open(img_path) as im:
                width, height = im.size
        except FileNotFoundError:
            raise ReferringRecordError(f'{where}: image file not found: {img_path}', 'missing image') from None
        except OSError as e:
            raise ReferringRecordError(f'{where}: cannot read image {img_path} ({e})', 'unreadable image') from None
        out = []
        for k, (polys, text) in enumerate(zip(masks, texts)):
            obj = f'{where}: object {k}'
            if not isinstance(text, str) or not text.strip():
                raise ReferringRecordError(f'{obj}: text must be a non-empty string, got {text!r}', 'bad text')
            if isinstance(polys, list) and polys and all(isinstance(v, (int, float)) for v in polys):
                raise ReferringRecordError(f'{obj}: mask is a flat list of numbers; an object is a list of polygons, '
                                           'write [[x1, y1, x2, y2, ...]]', 'bad segmentation')
            rle = segmentation_rle(polys, height, width, obj, self.polygon_tolerance)
            phrase = normalize_finetune_text(text) if self.normalize_text else text.strip()
            if not phrase:
                raise ReferringRecordError(f'{obj}: text {text!r} is empty after normalisation', 'bad text')
            out.append(dict(img_path=img_path, img_id=i, height=height, width=width, text=phrase,
                            sent_id=first_sent + k, ref_id=None, ann_id=None, rle=rle, source=path))
        return out


def _num_objects(item: Any) -> int:
    """Objects a record declares (its ``mask`` entries, else its ``text`` entries), valid or not: sent_ids count
    them so that skipping a bad record never renumbers the objects after it."""
    if not isinstance(item, dict):
        return 0
    for key in ('mask', 'text'):
        if isinstance(item.get(key), list):
            return len(item[key])
    return 0
