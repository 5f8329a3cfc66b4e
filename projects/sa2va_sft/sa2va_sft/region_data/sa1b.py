"""SA-1B (Segment Anything 1B) masks as region pairs of a still image.

Format (``facebookresearch/segment-anything:README.md``; Sa2VA reference §4.3): one JSON per image beside it,
``sa_000020/sa_223750.jpg`` + ``sa_223750.json`` = ``{"image": {image_id, width, height, file_name},
"annotations": [{id, segmentation (COCO RLE), bbox, area, predicted_iou, stability_score, crop_box,
point_coords}, ...]}``; masks decode with pycocotools (``mask_utils.decode(ann["segmentation"])``). SA-1B has no
text and no classes: ``expression`` and ``category_name`` are ``None``.

:class:`SA1BDataset` reads every JSON once at construction and keeps, per image, the ids (and areas) of the
annotations passing the filters; an image with none is skipped and counted. One sample per image; the
annotation is drawn at load by :class:`~.region_pair.LoadRegionPair` (``np.random``, seeded per sample) or, in
``test_mode``, the largest one. Views A and B are the same image and mask.
"""
from __future__ import annotations

import glob
import os.path as osp
from collections.abc import Mapping
from typing import Any

import numpy as np
from mmengine.logging import print_log

from ovseg.datasets.referring import ReferringRecordError, decode_rle, segmentation_rle
from ovseg.registry import DATASETS
from ovseg.utils.json_io import read_json

from .region_pair import RegionPairDataset, read_rgb, register_region_loader
from .sav import _read_id_list

__all__ = ['SA1BDataset', 'read_sa1b_json']


def read_sa1b_json(path: str) -> dict:
    """An SA-1B per-image JSON with ``image`` (``width``, ``height``) and ``annotations``; errors name the file."""
    doc = read_json(path, 'SA-1B image JSON', expect=dict, error=ReferringRecordError)
    image, anns = doc.get('image'), doc.get('annotations')
    if not isinstance(image, dict) or not isinstance(anns, list):
        raise ReferringRecordError(f"{path}: expected {{'image': {{...}}, 'annotations': [...]}} (SA-1B format)",
                                   'bad json')
    try:
        int(image['height']), int(image['width'])
    except (KeyError, TypeError, ValueError):
        raise ReferringRecordError(f"{path}: 'image' needs integer height and width", 'bad json') from None
    return doc


def _ann_rle(ann: Any, hw: tuple[int, int], where: str) -> dict:
    seg = ann.get('segmentation') if isinstance(ann, Mapping) else None
    if not isinstance(seg, Mapping) or not isinstance(seg.get('counts'), (str, bytes)) or 'size' not in seg:
        raise ReferringRecordError(f"{where}: 'segmentation' must be a compressed RLE {{'size', 'counts'}}",
                                   'bad RLE')
    if [int(v) for v in seg['size']] != list(hw):
        raise ReferringRecordError(f"{where}: RLE size {list(seg['size'])} (H, W) is not the image's {list(hw)}",
                                   'bad RLE')
    counts = seg['counts']
    return {'size': list(hw), 'counts': counts.encode('ascii') if isinstance(counts, str) else counts}


@register_region_loader('sa1b')
def _load_sa1b(record: dict) -> dict:
    ids, areas = record['ann_ids'], record['ann_areas']
    if record.get('deterministic'):
        k = int(np.argmax(areas))  # the largest (first of equals)
    else:
        k = np.random.randint(len(ids))
    ann_id = ids[k]
    json_path = record['json_path']
    record_id = f'{osp.basename(json_path)} ann {ann_id}'
    where = f'{json_path}: ann {ann_id}'
    doc = read_sa1b_json(json_path)
    hw = (int(doc['image']['height']), int(doc['image']['width']))
    ann = next((a for a in doc['annotations'] if isinstance(a, Mapping) and a.get('id') == ann_id), None)
    if ann is None:
        raise ReferringRecordError(f'{where}: annotation id {ann_id!r} is no longer in the file', 'bad json')
    # full check of the run lengths (pycocotools decodes malformed counts out of bounds), then decode
    mask = decode_rle(segmentation_rle(_ann_rle(ann, hw, where), *hw, where))
    img = read_rgb(record['img_path'], where)
    if img.shape[:2] != mask.shape:
        raise ReferringRecordError(f"{where}: the mask is {mask.shape[1]}x{mask.shape[0]} (WxH) but image "
                                   f"{record['img_path']} is {img.shape[1]}x{img.shape[0]}", 'mask size mismatch')
    return dict(img=img, img_path=record['img_path'], region_mask=mask, img2=img, img2_path=record['img_path'],
                region_mask2=mask, expression=None, category_name=None, record_id=record_id, ann_id=ann_id,
                annotation_path=json_path)


@DATASETS.register_module()
class SA1BDataset(RegionPairDataset):
    """SA-1B: one sample per image, one of its (filtered) masks drawn per load; the same image is both views.

    Args:
        data_root: the SA-1B folder (its ``sa_0000xx/`` sub-folders or the files themselves).
        ann_glob: pattern of the per-image JSONs below ``data_root`` (default ``**/sa_*.json``: any depth).
        file_list: optional text file of JSON paths relative to ``data_root``, one per line, instead of walking
            the tree (SA-1B has 11M images) or to take a subset.
        min_area: smallest mask area kept, in pixels (the annotation's ``area``), to drop specks nobody can
            caption. Default 0.
        max_area_ratio: largest area as a fraction of the image kept (default 1.0); e.g. 0.9 drops
            whole-image "background" masks.
        min_predicted_iou: smallest SAM ``predicted_iou`` kept (default 0.0), a mask-quality filter.
        min_stability_score: smallest SAM ``stability_score`` kept (default 0.0), a mask-quality filter.
        check_files: stat every image at construction (a missing one is a bad record) instead of failing at load.
        validate_rle: check every RLE's run lengths at construction (``ovseg.datasets.referring.segmentation_rle``;
            about 1-3 ms per mask, so off by default: SA-1B has 1.1B masks). Off: only form and size are checked
            there and the drawn RLE is fully checked when it is loaded.
        progress_interval: log progress every this many JSON files while building the index.
        on_bad_record: ``'raise'`` or ``'skip'`` (:class:`RegionPairDataset`). Bad records: missing / invalid JSON
            or image (per image), an annotation with a malformed RLE or an empty mask (per annotation).
        Other args as :class:`RegionPairDataset` / mmengine ``BaseDataset``. ``test_mode``: the largest kept
        annotation of each image.

    ``skipped`` also counts annotations removed by each filter and images left with none.
    """

    SOURCE = 'sa1b'

    def __init__(self, data_root: str = 'data/sa1b', ann_glob: str = '**/sa_*.json', file_list: str | None = None,
                 min_area: float = 0, max_area_ratio: float = 1.0, min_predicted_iou: float = 0.0,
                 min_stability_score: float = 0.0, check_files: bool = False, validate_rle: bool = False,
                 progress_interval: int = 10000,
                 on_bad_record: str = 'raise', **kwargs: Any) -> None:
        if not 0 < float(max_area_ratio) <= 1:
            raise ValueError(f'{type(self).__name__}: max_area_ratio must be in (0, 1], got {max_area_ratio!r}')
        self.ann_glob = ann_glob
        self.min_area = float(min_area)
        self.max_area_ratio = float(max_area_ratio)
        self.min_predicted_iou = float(min_predicted_iou)
        self.min_stability_score = float(min_stability_score)
        self.check_files = bool(check_files)
        self.validate_rle = bool(validate_rle)
        self.progress_interval = max(1, int(progress_interval))
        super().__init__(on_bad_record=on_bad_record, data_root=data_root, ann_file=file_list or '', **kwargs)

    def _json_paths(self) -> list[str]:
        if self.ann_file:
            return [osp.join(self.data_root, p) for p in _read_id_list(self.ann_file)]
        return sorted(glob.glob(osp.join(self.data_root, self.ann_glob), recursive=True))

    def load_data_list(self) -> list[dict]:
        paths = self._json_paths()
        if not paths:
            raise FileNotFoundError(f'{type(self).__name__}: no SA-1B JSON matching {self.ann_glob!r} in '
                                    f'{self.data_root}')
        data_list: list[dict] = []
        n_anns = 0
        for n, path in enumerate(paths, start=1):
            try:
                rec = self._index_json(path)
            except ReferringRecordError as e:
                self.bad.error(e)
                rec = None
            if rec is not None:
                data_list.append(rec)
                n_anns += len(rec['ann_ids'])
            if n % self.progress_interval == 0 and n < len(paths):
                print_log(f'{type(self).__name__}: indexed {n}/{len(paths)} JSON files', logger='current')
        if not data_list:
            raise ReferringRecordError(f'{type(self).__name__} {self.data_root}: no image with a usable annotation '
                                       f'in {len(paths)} JSON files (skipped: {self._skipped_summary()})')
        print_log(f'{type(self).__name__} {self.data_root}: {len(data_list)} images, {n_anns} annotations kept; '
                  f'skipped: {self._skipped_summary()}', logger='current')
        return data_list

    def _keep(self, ann: Mapping, area: float, image_area: int) -> str | None:
        """``None`` when the annotation passes the filters, else the filter's reason (a ``skipped`` key)."""
        if area < self.min_area:
            return 'annotations below min_area'
        if area > self.max_area_ratio * image_area:
            return 'annotations above max_area_ratio'
        if self.min_predicted_iou > 0 and float(ann.get('predicted_iou', -np.inf)) < self.min_predicted_iou:
            return 'annotations below min_predicted_iou'
        if self.min_stability_score > 0 and float(ann.get('stability_score', -np.inf)) < self.min_stability_score:
            return 'annotations below min_stability_score'
        return None

    def _index_json(self, path: str) -> dict | None:
        from pycocotools import mask as mask_util
        doc = read_sa1b_json(path)
        image = doc['image']
        hw = (int(image['height']), int(image['width']))
        file_name = image.get('file_name') or osp.splitext(osp.basename(path))[0] + '.jpg'
        img_path = osp.join(osp.dirname(path), str(file_name))
        if self.check_files and not osp.isfile(img_path):
            raise ReferringRecordError(f'{path}: image file not found: {img_path}', 'missing image')
        ids, areas = [], []
        for i, ann in enumerate(doc['annotations']):
            ann_id = ann.get('id', i) if isinstance(ann, Mapping) else i
            where = f'{path}: ann {ann_id}'
            try:
                rle = _ann_rle(ann, hw, where)
                if self.validate_rle:
                    segmentation_rle(rle, *hw, where)
            except ReferringRecordError as e:
                self.bad.error(e)
                continue
            rle_area = int(mask_util.area(rle))
            if rle_area == 0:
                self.bad('empty mask', f'{where}: the mask is empty')
                continue
            area = float(ann.get('area', rle_area))
            reason = self._keep(ann, area, hw[0] * hw[1])
            if reason is not None:
                self._filter(reason)
                continue
            ids.append(ann_id)
            areas.append(area)
        if not ids:
            self._filter('images without an annotation passing the filters')
            return None
        return dict(source=self.SOURCE, record_id=osp.basename(path), json_path=path, img_path=img_path,
                    image_id=image.get('image_id'), height=hw[0], width=hw[1], ann_ids=ids, ann_areas=areas)
