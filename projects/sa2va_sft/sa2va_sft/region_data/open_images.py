"""Open Images V7 instance segmentation masks as region pairs of a still image.

Format (Sa2VA reference §4.4: the official CSV description and ``voxel51/fiftyone:fiftyone/utils/openimages.py``):

* ``{train,validation,test}-annotations-object-segmentation.csv`` with columns
  ``MaskPath,ImageID,LabelName,BoxID,BoxXMin,BoxXMax,BoxYMin,BoxYMax,PredictedIoU,Clicks`` (boxes normalised);
* mask PNGs named ``{ImageID}_{LabelName without '/'}_{BoxID}.png``, shipped in ``{split}-masks-{0..f}.zip``
  sharded by the first hex digit of ``ImageID``; found here at ``<mask_dir>/<MaskPath>`` or, as fiftyone unpacks
  them, ``<mask_dir>/<ImageID[0].upper()>/<MaskPath>``;
* images ``<img_dir>/<ImageID>.jpg``;
* optional class descriptions ``LabelName,DisplayName`` (``class-descriptions-boxable.csv`` /
  ``oidv7-class-descriptions.csv``, with or without that header row) for ``category_name``.

A mask is ``gray > 122`` (fiftyone's threshold) and is resized (nearest) to the image size when its PNG has another
resolution. One sample per CSV row passing ``min_predicted_iou``; ``record_id`` is ``"<csv name> row <n>"`` with
``n`` the 1-based data row (the header is not counted: file line ``n + 1``). ``expression`` is ``None``.
"""
from __future__ import annotations

import csv
import os.path as osp
from typing import Any

import cv2
import numpy as np
from mmengine.logging import print_log

from ovseg.datasets.referring import ReferringRecordError
from ovseg.registry import DATASETS

from .region_pair import RegionPairDataset, read_rgb, register_region_loader

__all__ = ['OPEN_IMAGES_MASK_THRESHOLD', 'OpenImagesSegDataset', 'read_class_names', 'open_images_mask_paths',
           'read_open_images_mask']

#: fiftyone's threshold: a mask pixel is foreground when its grey value is > 122.
OPEN_IMAGES_MASK_THRESHOLD = 122
_REQUIRED_COLUMNS = ('MaskPath', 'ImageID', 'LabelName')


def read_class_names(path: str) -> dict[str, str]:
    """``{LabelName: DisplayName}`` of an Open Images class-description CSV (header row optional)."""
    if not osp.isfile(path):
        raise FileNotFoundError(f'{path}: no such file (Open Images class descriptions LabelName,DisplayName)')
    out = {}
    with open(path, encoding='utf-8', newline='') as f:
        for n, row in enumerate(csv.reader(f), start=1):
            if not row or (n == 1 and row[:2] == ['LabelName', 'DisplayName']):
                continue
            if len(row) < 2:
                raise ValueError(f'{path}: line {n} has {len(row)} column(s); expected LabelName,DisplayName')
            out[row[0]] = row[1]
    return out


def open_images_mask_paths(mask_dir: str, mask_path: str, image_id: str) -> tuple[str, str]:
    """The two places a mask PNG may be: ``<mask_dir>/<MaskPath>``, ``<mask_dir>/<ImageID[0].upper()>/<MaskPath>``."""
    return osp.join(mask_dir, mask_path), osp.join(mask_dir, image_id[:1].upper(), mask_path)


def read_open_images_mask(paths: tuple[str, ...], hw: tuple[int, int], where: str) -> tuple[np.ndarray, str]:
    """bool H×W mask (``gray > 122``) from the first existing path, resized (nearest) to ``hw`` if needed, and
    that path."""
    path = next((p for p in paths if osp.isfile(p)), None)
    if path is None:
        raise ReferringRecordError(f'{where}: mask PNG not found (looked for {" and ".join(paths)})', 'missing mask')
    gray = cv2.imread(path, cv2.IMREAD_GRAYSCALE)
    if gray is None:
        raise ReferringRecordError(f'{where}: cannot decode mask PNG {path}', 'unreadable mask')
    mask = gray > OPEN_IMAGES_MASK_THRESHOLD
    if mask.shape != tuple(hw):
        mask = cv2.resize(mask.astype(np.uint8), (hw[1], hw[0]), interpolation=cv2.INTER_NEAREST).astype(bool)
    return mask, path


@register_region_loader('open_images')
def _load_open_images(record: dict) -> dict:
    where = f"{record['csv_path']}: row {record['row']} (MaskPath {record['mask_path']})"
    img = read_rgb(record['img_path'], where)
    paths = (record['mask_file'],) if record.get('mask_file') else open_images_mask_paths(
        record['mask_dir'], record['mask_path'], record['image_id'])
    mask, mask_file = read_open_images_mask(paths, img.shape[:2], where)
    return dict(img=img, img_path=record['img_path'], region_mask=mask, img2=img, img2_path=record['img_path'],
                region_mask2=mask, expression=None, category_name=record.get('category_name'),
                annotation_path=mask_file)


@DATASETS.register_module()
class OpenImagesSegDataset(RegionPairDataset):
    """Open Images V7 segmentation: one sample per CSV row (mask), the same image as both views.

    Args:
        data_root: the Open Images folder; ``ann_file``, ``mask_dir``, ``img_dir`` and ``class_file`` are relative
            to it unless absolute.
        ann_file: the segmentation CSV (default ``train-annotations-object-segmentation.csv``).
        mask_dir: folder of the mask PNGs, flat or in fiftyone's ``<first hex digit>/`` sub-folders (default
            ``masks``).
        img_dir: folder of ``<ImageID>.jpg`` (default ``images``).
        class_file: optional ``LabelName,DisplayName`` CSV; gives ``category_name`` (``None`` without it, or for a
            label it does not list).
        min_predicted_iou: smallest ``PredictedIoU`` kept (the annotators' box-mask IoU estimate; default 0.0
            keeps every row, also rows without a value).
        check_files: stat every image and mask PNG at construction (a missing one is a bad record) instead of
            failing at load. Masks are only decoded at load: an empty one raises then (or, with
            ``on_bad_record='skip'``, makes mmengine draw another sample).
        progress_interval: log progress every this many CSV rows (the train CSV has 2.7M).
        on_bad_record: ``'raise'`` or ``'skip'`` (:class:`RegionPairDataset`). Bad rows: an empty ``MaskPath`` /
            ``ImageID``, an unparsable ``PredictedIoU``, missing files with ``check_files``.
        Other args as :class:`RegionPairDataset` / mmengine ``BaseDataset``.
    """

    SOURCE = 'open_images'

    def __init__(self, data_root: str = 'data/open_images', ann_file: str = 'train-annotations-object-segmentation.csv',
                 mask_dir: str = 'masks', img_dir: str = 'images', class_file: str | None = None,
                 min_predicted_iou: float = 0.0, check_files: bool = False, progress_interval: int = 100000,
                 on_bad_record: str = 'raise', **kwargs: Any) -> None:
        self.class_file = class_file
        self.min_predicted_iou = float(min_predicted_iou)
        self.check_files = bool(check_files)
        self.progress_interval = max(1, int(progress_interval))
        super().__init__(on_bad_record=on_bad_record, data_root=data_root, ann_file=ann_file,
                         data_prefix=dict(mask=mask_dir, img=img_dir), **kwargs)

    def load_options(self) -> dict[str, Any]:
        # per dataset, not per row: millions of rows share them
        return dict(super().load_options(), csv_path=self.ann_file, mask_dir=self.data_prefix['mask'])

    def load_data_list(self) -> list[dict]:
        path = self.ann_file
        if not osp.isfile(path):
            raise FileNotFoundError(f'{path}: no such file (Open Images segmentation CSV)')
        names = None
        if self.class_file:
            cls_path = self.class_file if osp.isabs(self.class_file) else osp.join(self.data_root, self.class_file)
            names = read_class_names(cls_path)
        mask_dir, img_dir = self.data_prefix['mask'], self.data_prefix['img']
        name = osp.basename(path)
        data_list: list[dict] = []
        with open(path, encoding='utf-8', newline='') as f:
            reader = csv.DictReader(f)
            missing = [c for c in _REQUIRED_COLUMNS if c not in (reader.fieldnames or [])]
            if missing:
                raise ReferringRecordError(f'{path}: the header lacks column(s) {missing} (has {reader.fieldnames})',
                                           'bad csv')
            if self.min_predicted_iou > 0 and 'PredictedIoU' not in reader.fieldnames:
                raise ReferringRecordError(f'{path}: min_predicted_iou={self.min_predicted_iou} but the CSV has no '
                                           'PredictedIoU column', 'bad csv')
            for n, row in enumerate(reader, start=1):
                rec = self._row(row, n, path, name, mask_dir, img_dir, names)
                if rec is not None:
                    data_list.append(rec)
                if n % self.progress_interval == 0:
                    print_log(f'{type(self).__name__}: read {n} rows of {path}', logger='current')
        if not data_list:
            raise ReferringRecordError(f'{path}: no usable row (skipped: {self._skipped_summary()})')
        print_log(f'{type(self).__name__} {path}: {len(data_list)} masks of '
                  f'{len({r["image_id"] for r in data_list})} images; skipped: {self._skipped_summary()}',
                  logger='current')
        return data_list

    def _row(self, row: dict, n: int, path: str, name: str, mask_dir: str, img_dir: str,
             names: dict[str, str] | None) -> dict | None:
        where = f'{path}: row {n}'
        mask_path, image_id, label = (row.get(c) or '' for c in _REQUIRED_COLUMNS)
        if not mask_path or not image_id:
            self.bad('bad row', f'{where}: empty MaskPath or ImageID')
            return None
        iou_text = (row.get('PredictedIoU') or '').strip()
        try:
            iou = float(iou_text) if iou_text else None
        except ValueError:
            self.bad('bad row', f'{where}: PredictedIoU {iou_text!r} is not a number')
            return None
        if self.min_predicted_iou > 0 and (iou is None or iou < self.min_predicted_iou):
            self._filter('rows below min_predicted_iou')
            return None
        img_path = osp.join(img_dir, f'{image_id}.jpg')
        mask_file = None
        if self.check_files:
            if not osp.isfile(img_path):
                self.bad('missing image', f'{where} (MaskPath {mask_path}): image file not found: {img_path}')
                return None
            candidates = open_images_mask_paths(mask_dir, mask_path, image_id)
            mask_file = next((p for p in candidates if osp.isfile(p)), None)
            if mask_file is None:
                self.bad('missing mask', f'{where}: mask PNG not found (looked for {" and ".join(candidates)})')
                return None
        return dict(source=self.SOURCE, record_id=f'{name} row {n}', row=n, mask_path=mask_path, mask_file=mask_file,
                    image_id=image_id, label_name=label, img_path=img_path,
                    predicted_iou=iou, category_name=names.get(label) if names is not None else None)
