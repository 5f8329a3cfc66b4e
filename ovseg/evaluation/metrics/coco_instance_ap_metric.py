"""``CocoInstanceAPMetric``: COCO mask AP against the official instance annotations (``instances_val2017.json``).

FC-CLIP's COCO AP is detectron2's ``COCOEvaluator`` on the dataset's instance JSON (the ``json_file`` of the
``openvocab_coco_2017_val_panoptic_with_sem_seg`` registration), not on thing segments cut out of the panoptic
PNGs: COCO instances may overlap, carry polygon / crowd annotations and their own ``area``, all of which the
panoptic format flattens. This metric therefore scores predictions with pycocotools' ``COCOeval('segm')``
against that file, exactly as detectron2's ``_evaluate_predictions_on_coco`` does (results without ``bbox``
so that areas come from the masks; ``params.imgIds`` = the evaluated images; ``maxDets`` [1, 10, 100]).
"""
from __future__ import annotations

import contextlib
import io
import os.path as osp
from collections.abc import Mapping, Sequence
from typing import Any

from mmengine.evaluator import BaseMetric
from mmengine.logging import print_log
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from ovseg.registry import METRICS

from ._utils import meta_classes, read_pred_instances
from .instance_ap_metric import AP_NAMES, classwise_ap, encode_mask


def coco_segm_eval(coco_gt: COCO, results: list[dict[str, Any]], img_ids: Sequence[Any],
                   classwise_names: Mapping[int, str] | None = None) -> tuple[dict[str, float], str]:
    """``COCOeval(iouType='segm')`` of ``results`` (COCO result dicts with RLE ``segmentation``) on
    ``img_ids``; returns (``mAP, AP50, AP75, APs, APm, APl`` ×100 and ``AP-<name>`` per category id in
    ``classwise_names``, NaN where COCOeval reports −1; the COCOeval printout)."""
    log = io.StringIO()
    with contextlib.redirect_stdout(log):
        if results:
            coco_dt = coco_gt.loadRes([{k: v for k, v in r.items() if k != 'bbox'} for r in results])
        else:  # pycocotools' loadRes cannot take an empty list; detectron2 then reports nothing
            coco_dt = COCO()
            coco_dt.dataset = {'images': coco_gt.dataset['images'], 'categories': coco_gt.dataset['categories'],
                               'annotations': []}
            coco_dt.createIndex()
        ev = COCOeval(coco_gt, coco_dt, iouType='segm')
        ev.params.imgIds = list(img_ids)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    metrics = {name: float(v * 100) if v >= 0 else float('nan') for name, v in zip(AP_NAMES, ev.stats[:6])}
    if classwise_names is not None:
        metrics.update(classwise_ap(ev, classwise_names))
    return metrics, log.getvalue()


@METRICS.register_module()
class CocoInstanceAPMetric(BaseMetric):
    """Mask AP of ``pred_instances`` against a COCO instance-annotation file (FC-CLIP's COCO protocol).

    Predictions of thing classes are mapped to dataset category ids through ``dataset_meta['category_ids']``
    (for COCO panoptic the thing ids equal the instance ids); stuff predictions are dropped. Image ids are the
    samples' ``img_id`` and must exist in ``ann_file``; masks must have that image's size.

    Args:
        ann_file: the instance JSON, e.g. ``data/coco/annotations/instances_val2017.json``.
        classwise: also return ``AP-<class>``.
    """

    default_prefix: str | None = 'instance'

    def __init__(self, ann_file: str, classwise: bool = False, collect_device: str = 'cpu',
                 prefix: str | None = None, collect_dir: str | None = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix, collect_dir=collect_dir)
        if not ann_file:
            raise ValueError('CocoInstanceAPMetric needs ann_file (the COCO instance annotations JSON)')
        self.ann_file = ann_file
        self.classwise = classwise
        self._coco_gt: COCO | None = None

    def _gt(self) -> COCO:
        if self._coco_gt is None:  # loaded once, on the rank that computes (kept for later validations)
            if not osp.isfile(self.ann_file):
                raise FileNotFoundError(f'CocoInstanceAPMetric: instance annotations not found: {self.ann_file}')
            with contextlib.redirect_stdout(io.StringIO()):
                self._coco_gt = COCO(self.ann_file)
        return self._coco_gt

    def process(self, data_batch: Any, data_samples: Sequence[Mapping[str, Any]]) -> None:
        _, is_thing = meta_classes(self.dataset_meta, type(self).__name__)
        cat_ids = list((self.dataset_meta or {}).get('category_ids') or [])
        if len(cat_ids) != len(is_thing):
            raise ValueError(f'{type(self).__name__}: dataset_meta needs category_ids for its {len(is_thing)} '
                             f'classes (got {len(cat_ids)})')
        for i, ds in enumerate(data_samples):
            image_id = ds.get('img_id')
            if image_id is None:
                raise KeyError(f'sample {len(self.results) + i}: no "img_id" to look up in {self.ann_file}')
            masks, labels, scores = read_pred_instances(ds, image_id)
            dets = [{
                'image_id': image_id,
                'category_id': int(cat_ids[c]),
                'segmentation': encode_mask(m),
                'score': float(s)
            } for m, c, s in zip(masks, labels, scores) if 0 <= c < len(is_thing) and is_thing[c]]
            self.results.append({'image_id': image_id, 'size': tuple(masks.shape[1:]) if len(masks) else None,
                                 'dets': dets})

    def compute_metrics(self, results: list) -> dict[str, float]:
        classes, is_thing = meta_classes(self.dataset_meta, type(self).__name__)
        cat_ids = list(self.dataset_meta['category_ids'])
        coco_gt = self._gt()
        gt_cats = set(coco_gt.getCatIds())
        thing_ids = {int(cat_ids[k]): classes[k] for k, t in enumerate(is_thing) if t}
        missing = sorted(set(thing_ids) - gt_cats)
        if missing:
            raise ValueError(f'CocoInstanceAPMetric: thing category ids {missing[:10]} of the dataset are not '
                             f'categories of {self.ann_file}')
        img_ids = []
        for r in results:
            img = coco_gt.imgs.get(r['image_id'])
            if img is None:
                raise KeyError(f'CocoInstanceAPMetric: image id {r["image_id"]!r} is not in {self.ann_file}')
            if r['size'] is not None and tuple(r['size']) != (img['height'], img['width']):
                raise ValueError(f'image {r["image_id"]!r}: predicted masks are {r["size"][1]}x{r["size"][0]} '
                                 f'(WxH) but {self.ann_file} says {img["width"]}x{img["height"]}')
            img_ids.append(r['image_id'])
        dets = [d for r in results for d in r['dets']]
        metrics, log = coco_segm_eval(coco_gt, dets, sorted(set(img_ids)),
                                      thing_ids if self.classwise else None)
        print_log(f'mask AP against {self.ann_file} ({len(set(img_ids))} images, {len(dets)} detections)\n'
                  + log, logger='current')
        return metrics
