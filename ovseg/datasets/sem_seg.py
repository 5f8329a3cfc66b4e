"""Semantic-segmentation datasets stored as image + label-map pairs (ADE-150/847, PASCAL Context, VOC).

Labels are contiguous class indices. ``ignore_index`` is per dataset: 255 for up to 255 classes, 65535 for the
16-bit A-847 / PC-459 TIFFs, where 255 is a real class (FC-CLIP's registrations use ``ignore_label=65535``).
It travels in ``metainfo`` and in every data info, so the loader, the training targets and ``SemSegMetric`` use
the same value. ``reduce_zero_label`` gives mmseg's semantics for raw ADE20K PNGs (0 → ignore, others −1).
"""
from __future__ import annotations

import os
import os.path as osp
from collections.abc import Mapping, Sequence
from typing import Any

from mmengine.dataset import BaseDataset

from ovseg.registry import DATASETS
from ovseg.vocabulary import load_category_meta, load_vocabulary

from .builder import build_pipeline
from .metainfo import build_metainfo, check_ignore_index, default_ignore_index
from .sample_seed import SeededSampleMixin


@DATASETS.register_module()
class SemSegDataset(SeededSampleMixin, BaseDataset):
    """Image/label pairs matched by file stem.

    Args:
        vocabulary: builtin name or path of the class vocabulary (required: it defines the classes).
        data_prefix: ``dict(img=<image dir>, seg=<label dir>)``.
        img_suffix / seg_map_suffix: file endings (``'.jpg'`` / ``'.png'``; A-847 and PC-459 use ``'.tif'``).
        ann_file: optional text file with one stem per line; default: every image under ``img`` (recursive).
        reduce_zero_label: raw label 0 is "unlabelled" and classes start at 1 (raw ADE20K PNGs).
        is_thing: per-class flags (default all False: semantic datasets have no instances).
        palette_from: builtin category-metadata name for official colours (e.g. ``'pascal_context_59'``).
        ignore_index: label of unannotated pixels; default 255, or 65535 when there are more than 255 classes
            (so class 255 stays a class). A value inside ``0..C-1`` is refused.
    """

    METAINFO: dict = dict()

    def __init__(self,
                 vocabulary: str | os.PathLike,
                 data_root: str = '',
                 data_prefix: dict | None = None,
                 ann_file: str = '',
                 img_suffix: str = '.jpg',
                 seg_map_suffix: str = '.png',
                 reduce_zero_label: bool = False,
                 is_thing: Sequence[bool] | None = None,
                 palette_from: str | None = None,
                 ignore_index: int | None = None,
                 metainfo: Mapping | None = None,
                 **kwargs: Any) -> None:
        if vocabulary is None:
            raise ValueError(f'{type(self).__name__}: `vocabulary` is required (it defines the classes)')
        self.vocabulary = vocabulary
        self.img_suffix = img_suffix
        self.seg_map_suffix = seg_map_suffix
        self.reduce_zero_label = reduce_zero_label
        synonyms = load_vocabulary(vocabulary)
        flags = [False] * len(synonyms) if is_thing is None else list(is_thing)
        if len(flags) != len(synonyms):
            raise ValueError(f'is_thing has {len(flags)} entries for {len(synonyms)} classes')
        palette = None
        if palette_from is not None:
            cats = load_category_meta(palette_from)
            if len(cats) != len(synonyms):
                raise ValueError(f"palette_from='{palette_from}' has {len(cats)} categories for "
                                 f'{len(synonyms)} classes')
            palette = [c['color'] for c in cats]
        if ignore_index is None:
            ignore_index = default_ignore_index(len(synonyms))
        self.ignore_index = check_ignore_index(ignore_index, len(synonyms), f'{type(self).__name__}')
        class_meta = build_metainfo(synonyms, flags, list(range(len(synonyms))), palette, metainfo,
                                    ignore_index=self.ignore_index)
        self.ignore_index = class_meta['ignore_index']
        data_prefix = dict(img='', seg='') if data_prefix is None else dict(data_prefix)
        for key in ('img', 'seg'):
            data_prefix.setdefault(key, '')
        lazy_init = kwargs.pop('lazy_init', False)
        kwargs['pipeline'] = build_pipeline(kwargs.get('pipeline'))
        super().__init__(ann_file=ann_file, data_root=data_root, data_prefix=data_prefix, metainfo=None,
                         lazy_init=True, **kwargs)
        self._metainfo = class_meta
        if not lazy_init:
            self.full_init()

    def load_data_list(self) -> list[dict]:
        img_dir, seg_dir = self.data_prefix['img'], self.data_prefix['seg']
        if self.ann_file:
            if not osp.isfile(self.ann_file):
                raise FileNotFoundError(f'{type(self).__name__}: split file not found: {self.ann_file}')
            with open(self.ann_file, encoding='utf-8') as f:
                stems = [line.strip() for line in f if line.strip()]
        else:
            if not osp.isdir(img_dir):
                raise FileNotFoundError(f"{type(self).__name__}: image directory not found: {img_dir} "
                                        "(data_prefix['img'])")
            stems = sorted(
                osp.relpath(osp.join(d, f), img_dir)[:-len(self.img_suffix)]
                for d, _, files in os.walk(img_dir) for f in files if f.endswith(self.img_suffix))
        if not stems:
            where = self.ann_file or img_dir
            raise ValueError(f"{type(self).__name__}: dataset is empty: no '*{self.img_suffix}' in {where}")
        return [dict(img_path=osp.join(img_dir, s + self.img_suffix),
                     seg_map_path=osp.join(seg_dir, s + self.seg_map_suffix),
                     img_id=s, reduce_zero_label=self.reduce_zero_label, ignore_index=self.ignore_index,
                     segments_info=[])
                for s in stems]
