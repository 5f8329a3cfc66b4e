"""``InstanceMaskAPMetric``: COCO mask AP (pycocotools ``segm``) with GT instances taken from panoptic GT.

Panoptic-derived AP is FC-CLIP's protocol for ADE20K-150 only: its ``ade20k_instance_val.json``
(prepare_ade20k_ins_seg.py) holds the same instance masks as the thing segments of the panoptic GT. COCO AP
comes from ``instances_val2017.json`` (:class:`CocoInstanceAPMetric`) and Cityscapes AP from cityscapesScripts
(:class:`CityscapesInstanceAPMetric`).
"""
from __future__ import annotations

import contextlib
import io
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from mmengine.evaluator import BaseMetric
from mmengine.logging import print_log
from pycocotools import mask as mask_util
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from ovseg.registry import METRICS

from ._utils import get_field, meta_classes, to_numpy

AP_NAMES = ('mAP', 'AP50', 'AP75', 'APs', 'APm', 'APl')


def encode_mask(mask: np.ndarray) -> dict[str, Any]:
    """Binary H×W mask -> compressed RLE with str counts (pycocotools needs Fortran-ordered uint8)."""
    rle = mask_util.encode(np.asfortranarray(mask.astype(np.uint8)))
    rle['counts'] = rle['counts'].decode('utf-8')
    return rle


def gt_instances_from_panoptic(pan: np.ndarray, segments: Sequence[Mapping[str, Any]],
                               is_thing: Sequence[bool]) -> list[dict[str, Any]]:
    """One RLE per thing segment present in the map: ``{'segmentation', 'category', 'iscrowd', 'area'}``."""
    out = []
    for seg in segments:
        cat = int(seg['category_id'])
        if not 0 <= cat < len(is_thing) or not is_thing[cat]:
            continue
        mask = pan == int(seg['id'])
        area = int(mask.sum())
        if area == 0:  # cannot be detected at this resolution; panoptic JSONs never list such segments
            continue
        out.append({
            'segmentation': encode_mask(mask),
            'category': cat,
            'iscrowd': int(seg.get('iscrowd', 0)),
            'area': area
        })
    return out


def coco_mask_ap(gts: Sequence[Sequence[Mapping[str, Any]]],
                 dets: Sequence[Sequence[Mapping[str, Any]]],
                 image_sizes: Sequence[tuple[int, int]],
                 categories: Sequence[int],
                 classwise_names: Mapping[int, str] | None = None) -> tuple[dict[str, float], str]:
    """COCOeval ``segm`` over in-memory RLEs. ``gts``/``dets`` per image: dicts with ``segmentation``,
    ``category`` (and ``iscrowd``/``area`` for GT, ``score`` for detections). Returns (metrics ×100, log)."""
    images = [{'id': i + 1, 'height': int(h), 'width': int(w)} for i, (h, w) in enumerate(image_sizes)]
    cats = [{'id': c + 1, 'name': str(c)} for c in categories]
    anns = []
    for i, per_image in enumerate(gts):
        for g in per_image:
            anns.append({
                'id': len(anns) + 1,
                'image_id': i + 1,
                'category_id': g['category'] + 1,
                'segmentation': g['segmentation'],
                'area': g['area'],
                'iscrowd': g['iscrowd'],
                'bbox': mask_util.toBbox(g['segmentation']).tolist()
            })
    results = [{
        'image_id': i + 1,
        'category_id': d['category'] + 1,
        'segmentation': d['segmentation'],
        'score': float(d['score'])
    } for i, per_image in enumerate(dets) for d in per_image]
    log = io.StringIO()
    with contextlib.redirect_stdout(log):
        coco_gt = COCO()
        coco_gt.dataset = {'images': images, 'categories': cats, 'annotations': anns}
        coco_gt.createIndex()
        if results:  # no `bbox` key: loadRes then uses the mask area, like detectron2 does for segm
            coco_dt = coco_gt.loadRes(results)
        else:
            coco_dt = COCO()
            coco_dt.dataset = {'images': images, 'categories': cats, 'annotations': []}
            coco_dt.createIndex()
        ev = COCOeval(coco_gt, coco_dt, iouType='segm')
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    metrics = {name: float(v * 100) if v >= 0 else float('nan') for name, v in zip(AP_NAMES, ev.stats[:6])}
    if classwise_names is not None:
        metrics.update(classwise_ap(ev, {c + 1: classwise_names[c] for c in categories}))
    return metrics, log.getvalue()


def classwise_ap(ev: COCOeval, names: Mapping[int, str]) -> dict[str, float]:
    """``AP-<name>`` (×100, area 'all', 100 detections) for each evaluated category id listed in ``names``."""
    precision = ev.eval['precision']  # T×R×K×A×M, K in ev.params.catIds order
    out = {}
    for k, cat_id in enumerate(ev.params.catIds):
        if cat_id not in names:
            continue
        p = precision[:, :, k, 0, -1]
        p = p[p > -1]
        out[f'AP-{names[cat_id]}'] = float(np.mean(p) * 100) if p.size else float('nan')
    return out


@METRICS.register_module()
class InstanceMaskAPMetric(BaseMetric):
    """Mask AP of ``pred_instances`` against thing segments of the **panoptic** GT (crowd -> COCO ignore).

    The ADE20K-150 protocol (see the module docstring); for COCO and Cityscapes use the metrics of their
    official instance annotations.

    Predictions: ``pred_instances.masks`` (bool K×H×W), ``labels``, ``scores``; predictions of non-thing
    classes are dropped (COCOeval would never look at them). Reports ``mAP, AP50, AP75, APs, APm, APl`` ×100.
    """

    default_prefix: str | None = 'instance'

    def __init__(self,
                 classwise: bool = False,
                 collect_device: str = 'cpu',
                 prefix: str | None = None,
                 collect_dir: str | None = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix, collect_dir=collect_dir)
        self.classwise = classwise

    def process(self, data_batch: Any, data_samples: Sequence[Mapping[str, Any]]) -> None:
        _, is_thing = meta_classes(self.dataset_meta, type(self).__name__)
        for i, ds in enumerate(data_samples):
            image_id = ds.get('img_id', ds.get('img_path', len(self.results) + i))
            pan = to_numpy(get_field(ds, 'gt_panoptic_seg', image_id))
            pan = pan[0] if pan.ndim == 3 else pan
            gts = gt_instances_from_panoptic(pan, ds.get('segments_info') or [], is_thing)
            if 'pred_instances' not in ds:
                raise KeyError(f'image {image_id!r}: data sample has no "pred_instances" (does the model predict '
                               'instances? e.g. model.test_cfg.instance_on=True)')
            inst = ds['pred_instances']
            masks = to_numpy(inst['masks']).astype(bool, copy=False)
            labels = to_numpy(inst['labels']).astype(np.int64).reshape(-1)
            scores = to_numpy(inst['scores']).astype(np.float64).reshape(-1)
            if masks.ndim != 3 or not (len(masks) == len(labels) == len(scores)):
                raise ValueError(
                    f'image {image_id!r}: pred_instances need masks K×H×W, labels K, scores K; got '
                    f'{masks.shape}, {labels.shape}, {scores.shape}')
            if len(masks) and masks.shape[1:] != pan.shape:
                raise ValueError(f'image {image_id!r}: predicted masks {masks.shape[1:]} differ from GT size '
                                 f'{pan.shape}')
            dets = [{
                'segmentation': encode_mask(m),
                'category': int(c),
                'score': float(s)
            } for m, c, s in zip(masks, labels, scores) if 0 <= c < len(is_thing) and is_thing[c]]
            self.results.append({'gts': gts, 'dets': dets, 'size': tuple(pan.shape)})

    def compute_metrics(self, results: list) -> dict[str, float]:
        classes, is_thing = meta_classes(self.dataset_meta, type(self).__name__)
        thing_ids = [k for k, t in enumerate(is_thing) if t]
        if not thing_ids:
            raise ValueError('InstanceMaskAPMetric: dataset_meta has no thing classes to evaluate')
        metrics, log = coco_mask_ap([r['gts'] for r in results], [r['dets'] for r in results],
                                    [r['size'] for r in results], thing_ids,
                                    {k: classes[k]
                                     for k in thing_ids} if self.classwise else None)
        print_log('mask AP against the thing segments of the panoptic GT (FC-CLIP\'s ADE20K protocol)\n' + log,
                  logger='current')
        return metrics
