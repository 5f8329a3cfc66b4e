"""COCO-panoptic-format datasets: COCO, ADE20K-150 panoptic, Cityscapes panoptic, Mapillary, custom data.

The JSON (``images``, ``annotations`` with ``segments_info``, ``categories`` with ``isthing``) is parsed and
validated once at construction; PNGs are only read by the loading transforms. The contiguous class index
is the rank of a category id among the JSON's categories, which for Cityscapes maps label ids 7..33 to the
19 train ids and for COCO maps the 133 sparse ids to 0..132.
"""
from __future__ import annotations

import json
import os
import os.path as osp
from collections.abc import Mapping
from typing import Any

from mmengine.dataset import BaseDataset
from mmengine.logging import print_log

from ovseg.registry import DATASETS

from .builder import build_pipeline
from .metainfo import build_metainfo, synonyms_for
from .sample_seed import SeededSampleMixin


@DATASETS.register_module()
class CocoPanopticDataset(SeededSampleMixin, BaseDataset):
    """Panoptic dataset in COCO panoptic format.

    Args:
        ann_file: panoptic JSON, relative to ``data_root`` unless absolute.
        data_root: dataset root joined with ``ann_file`` and ``data_prefix``.
        data_prefix: ``dict(img=<image dir>, seg=<panoptic PNG dir>)``, optionally ``sem_seg=<semantic label
            dir>``: a separate semantic GT per image (same file name as the panoptic PNG), exposed as
            ``sem_seg_map_path`` for ``LoadSemSegAnnotations(path_key='sem_seg_map_path')``. FC-CLIP registers
            ADE20K-150 panoptic val this way (``annotations_detectron2/validation``), so its mIoU is scored on
            the SceneParsing labels, not on a semantic map derived from the panoptic PNGs.
        vocabulary: builtin vocabulary name or file giving synonyms (one line per JSON category, in
            category-id order); default: the JSON category names.
        img_subdir_sep: Cityscapes keeps images in per-city folders named by the file-name prefix; with
            ``'_'`` an image ``aachen_000000_000019_leftImg8bit.png`` is looked up in ``<img>/aachen/``.
        check_files: stat every image and PNG up front (slow on big datasets; the loaders check anyway).
        filter_cfg: ``dict(filter_empty_gt=True)`` drops training images without non-crowd segments.
        metainfo: extra keys or overrides of ``palette``/``ignore_index``/``label_divisor``.
        unlisted_segments: what a PNG segment id absent from the image's ``segments_info`` means, stored in
            every data_info (``unlisted_segments``) for :class:`LoadPanopticAnnotations` (``unknown_ids=None``):
            ``'error'`` (default: such an id usually means the PNG and the JSON do not belong together) or
            ``'no_target'`` (the segment was deleted from the JSON on purpose, e.g. the in/out-vocabulary label
            configurations of ``tools/dataset_converters/cityscapes_inout.py``: its pixels become VOID and give
            no training target, as FC-CLIP's mapper, which builds instances from ``segments_info`` only).
            PQ gotcha: panopticapi does NOT treat a GT PNG id absent from the GT JSON as VOID (only id 0 is
            VOID; such a segment is skipped in matching and a prediction covering it is not excused, so it
            counts as a false positive), and ovseg's loader raises on it by default. A deleted-class JSON
            therefore scores correct predictions of the deleted classes as errors: never evaluate on one,
            evaluate on the full val JSON (all 19 classes).
        Other args as in :class:`mmengine.dataset.BaseDataset`.
    """

    UNLISTED_SEGMENTS = ('error', 'no_target')

    METAINFO: dict = dict()

    def __init__(self,
                 ann_file: str = '',
                 data_root: str = '',
                 data_prefix: dict | None = None,
                 vocabulary: str | os.PathLike | None = None,
                 img_subdir_sep: str | None = None,
                 check_files: bool = False,
                 metainfo: Mapping | None = None,
                 lazy_init: bool = False,
                 unlisted_segments: str = 'error',
                 **kwargs: Any) -> None:
        if not ann_file:
            raise ValueError(f'{type(self).__name__}: `ann_file` (the panoptic JSON) is required')
        if unlisted_segments not in self.UNLISTED_SEGMENTS:
            raise ValueError(f'{type(self).__name__}({ann_file!r}): unlisted_segments must be one of '
                             f'{self.UNLISTED_SEGMENTS}, got {unlisted_segments!r}')
        self.unlisted_segments = unlisted_segments
        self.vocabulary = vocabulary
        self.img_subdir_sep = img_subdir_sep
        self.check_files = check_files
        self._raw_json: dict | None = None
        data_prefix = dict(img='', seg='') if data_prefix is None else dict(data_prefix)
        for key in ('img', 'seg'):
            data_prefix.setdefault(key, '')
        kwargs['pipeline'] = build_pipeline(kwargs.get('pipeline'))
        super().__init__(ann_file=ann_file, data_root=data_root, data_prefix=data_prefix,
                         metainfo=None, lazy_init=True, **kwargs)
        if self.test_mode and unlisted_segments == 'no_target':
            print_log(f"{self.ann_file}: unlisted_segments='no_target' on an evaluation dataset: PNG segments "
                      'missing from the JSON become VOID, so their classes are not scored; evaluate on the full '
                      'JSON (see the CocoPanopticDataset docstring)', logger='current', level=30)
        raw = self._read_json()
        self._categories = self._parse_categories(raw)
        self._metainfo = self._build_metainfo(metainfo)
        if lazy_init:
            self._raw_json = None  # metainfo only: re-read the JSON when the data list is needed
        else:
            self._raw_json = raw
            self.full_init()

    # ------------------------------------------------------------------------------------------ parsing
    def _read_json(self) -> dict:
        if not osp.isfile(self.ann_file):
            raise FileNotFoundError(f'{type(self).__name__}: annotation file not found: {self.ann_file}')
        with open(self.ann_file, encoding='utf-8') as f:
            try:
                raw = json.load(f)
            except json.JSONDecodeError as e:
                raise ValueError(f'{self.ann_file}: not valid JSON ({e})') from None
        if not isinstance(raw, dict):
            raise ValueError(f'{self.ann_file}: top level must be an object with '
                             'images/annotations/categories')
        for key in ('images', 'annotations', 'categories'):
            if not isinstance(raw.get(key), list):
                raise ValueError(f"{self.ann_file}: missing or non-list field '{key}'")
        return raw

    def _parse_categories(self, raw: dict) -> list[dict]:
        cats = []
        for i, cat in enumerate(raw['categories']):
            for key in ('id', 'name'):
                if key not in cat:
                    raise ValueError(f"{self.ann_file}: categories[{i}] has no '{key}'")
            cats.append(dict(cat))
        if not cats:
            raise ValueError(f"{self.ann_file}: 'categories' is empty")
        ids = [int(c['id']) for c in cats]
        if len(set(ids)) != len(ids):
            dup = sorted({i for i in ids if ids.count(i) > 1})
            raise ValueError(f'{self.ann_file}: duplicate category id(s) {dup} in categories')
        cats.sort(key=lambda c: int(c['id']))
        return cats

    def _build_metainfo(self, user_metainfo: Mapping | None) -> dict:
        cats = self._categories
        synonyms = synonyms_for([c['name'] for c in cats], self.vocabulary, f"'{self.ann_file}'")
        palette = None
        if all(isinstance(c.get('color'), (list, tuple)) and len(c['color']) == 3 for c in cats):
            palette = [c['color'] for c in cats]
        return build_metainfo(synonyms, [bool(c.get('isthing', 0)) for c in cats],
                              [int(c['id']) for c in cats], palette, user_metainfo)

    # ------------------------------------------------------------------------------------------ data list
    def load_data_list(self) -> list[dict]:
        raw = self._raw_json if self._raw_json is not None else self._read_json()
        self._raw_json = None  # free the (possibly large) JSON once the compact data list exists
        where = self.ann_file
        contiguous = {int(c['id']): i for i, c in enumerate(self._categories)}
        isthing = {int(c['id']): bool(c.get('isthing', 0)) for c in self._categories}

        images: dict[Any, dict] = {}
        for i, img in enumerate(raw['images']):
            for key in ('id', 'file_name'):
                if key not in img:
                    raise ValueError(f"{where}: images[{i}] has no '{key}'")
            if img['id'] in images:
                raise ValueError(f"{where}: images[{i}].id {img['id']!r} is duplicated")
            images[img['id']] = img

        data_list = []
        seen_images: set = set()
        for a, ann in enumerate(raw['annotations']):
            for key in ('image_id', 'file_name', 'segments_info'):
                if key not in ann:
                    raise ValueError(f"{where}: annotations[{a}] has no '{key}'")
            image_id = ann['image_id']
            if image_id not in images:
                raise ValueError(f'{where}: annotations[{a}].image_id {image_id!r} has no matching entry '
                                 "in 'images'")
            if image_id in seen_images:
                raise ValueError(f'{where}: annotations[{a}].image_id {image_id!r} is annotated twice')
            seen_images.add(image_id)
            img = images[image_id]
            segments = []
            seg_ids: set[int] = set()
            for s, seg in enumerate(ann['segments_info']):
                field = f'annotations[{a}].segments_info[{s}]'
                for key in ('id', 'category_id'):
                    if key not in seg:
                        raise ValueError(f"{where}: {field} has no '{key}'")
                sid, cat = int(seg['id']), int(seg['category_id'])
                if cat not in contiguous:
                    raise ValueError(f'{where}: {field}.category_id {cat} is not in categories '
                                     f'(image {image_id!r})')
                if sid == 0:
                    raise ValueError(f'{where}: {field}.id is 0, which is reserved for VOID')
                if sid in seg_ids:
                    raise ValueError(f'{where}: {field}.id {sid} is duplicated within image {image_id!r}')
                seg_ids.add(sid)
                segments.append(dict(
                    id=sid, category_id=contiguous[cat], iscrowd=int(seg.get('iscrowd', 0)),
                    area=int(seg.get('area', 0)), isthing=isthing[cat],
                    bbox=[float(v) for v in seg.get('bbox', (0, 0, 0, 0))]))
            info = dict(
                img_path=self._img_path(img['file_name']),
                seg_map_path=osp.join(self.data_prefix['seg'], ann['file_name']),
                img_id=image_id,
                height=int(img.get('height', 0)),
                width=int(img.get('width', 0)),
                segments_info=segments,
                ignore_index=self._metainfo['ignore_index'],
                unlisted_segments=self.unlisted_segments,
            )
            if self.data_prefix.get('sem_seg'):
                info['sem_seg_map_path'] = osp.join(self.data_prefix['sem_seg'], ann['file_name'])
            data_list.append(info)
        if not data_list:
            raise ValueError(f'{where}: dataset is empty (no annotations)')
        unannotated = len(images) - len(seen_images)
        if unannotated:
            print_log(f'{where}: {unannotated} image(s) without annotations are skipped', logger='current')
        if self.check_files:
            self._check_files(data_list)
        return data_list

    def _img_path(self, file_name: str) -> str:
        root = self.data_prefix['img']
        if self.img_subdir_sep:
            return osp.join(root, file_name.split(self.img_subdir_sep)[0], file_name)
        return osp.join(root, file_name)

    def _check_files(self, data_list: list[dict]) -> None:
        for info in data_list:
            for key in ('img_path', 'seg_map_path', 'sem_seg_map_path'):
                if key in info and not osp.isfile(info[key]):
                    raise FileNotFoundError(f'{self.ann_file}: {key} of image {info["img_id"]!r} not found: '
                                            f'{info[key]}')

    def filter_data(self) -> list[dict]:
        """Drop training images without any non-crowd segment when ``filter_empty_gt`` is set."""
        if self.test_mode or not (self.filter_cfg or {}).get('filter_empty_gt', False):
            return self.data_list
        kept = [d for d in self.data_list if any(not s['iscrowd'] for s in d['segments_info'])]
        if not kept:
            raise ValueError(f'{self.ann_file}: every image was filtered out by filter_empty_gt')
        return kept
