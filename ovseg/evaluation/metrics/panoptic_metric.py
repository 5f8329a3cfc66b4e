"""``PanopticMetric``: panopticapi PQ computed in memory during validation (no PNG round trip)."""
from __future__ import annotations

import json
import os
import os.path as osp
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from mmengine.evaluator import BaseMetric
from mmengine.logging import print_log

from ovseg.registry import METRICS
from ovseg.structures.panoptic_format import write_panoptic_png

from ..functional.panoptic_io import format_pq_table
from ..functional.panoptic_quality import PanopticFormatError, PQStats, pq_image_stats, pq_summary
from ._utils import get_field, meta_classes, sample_name, to_numpy


def _clean_segments(segments: Any, what: str, image_id: Any) -> list[dict[str, Any]]:
    """Plain-int copies of ``segments_info`` (tensor scalars do not hash like ints)."""
    if segments is None:
        raise PanopticFormatError(f'image {image_id!r}: {what} segments_info is missing')
    out = []
    for s, seg in enumerate(segments):
        try:
            item = {'id': int(seg['id']), 'category_id': int(seg['category_id'])}
        except (KeyError, TypeError, ValueError) as e:
            raise PanopticFormatError(
                f'image {image_id!r}: {what} segments_info[{s}] needs integer "id" and "category_id": {seg!r}'
            ) from e
        if 'iscrowd' in seg:
            item['iscrowd'] = int(seg['iscrowd'])
        if 'area' in seg:
            area = seg['area']
            item['area'] = float(area) if isinstance(area, float) else int(area)
        if 'isthing' in seg:
            item['isthing'] = seg['isthing']
        out.append(item)
    return out


@METRICS.register_module()
class PanopticMetric(BaseMetric):
    """Panoptic quality with panopticapi's exact rules, over the contiguous classes of ``dataset_meta``.

    ``process`` reduces each image to a few per-category numbers (sparse ``PQStats``), so gathering results
    across ranks is cheap. Reads ``pred_panoptic_seg.data`` (ids, 0 = VOID), ``pred_segments_info``,
    ``gt_panoptic_seg.data`` (GT ids at original size) and ``segments_info`` (GT; ``area`` is the GT area).

    Args:
        classwise: also return ``PQ-<class>``, ``SQ-<class>``, ``RQ-<class>``.
        outfile_prefix: if set, write predictions in panopticapi format: ``<prefix>.panoptic/<name>.png``
            (``id2rgb``) and ``<prefix>.panoptic.json`` (dataset category ids via ``category_ids`` metainfo).
        format_only: only write the predictions (needs ``outfile_prefix``); no GT needed, no metrics.
    """

    default_prefix: str | None = 'panoptic'

    def __init__(self,
                 classwise: bool = False,
                 outfile_prefix: str | None = None,
                 format_only: bool = False,
                 collect_device: str = 'cpu',
                 prefix: str | None = None,
                 collect_dir: str | None = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix, collect_dir=collect_dir)
        if format_only and not outfile_prefix:
            raise ValueError('PanopticMetric(format_only=True) needs outfile_prefix to know where to write')
        self.classwise = classwise
        self.outfile_prefix = outfile_prefix
        self.format_only = format_only

    # ------------------------------------------------------------------------------------------ helpers
    def _num_classes(self) -> int:
        return len(meta_classes(self.dataset_meta, type(self).__name__)[0])

    def _dataset_category_ids(self) -> list[Any]:
        classes = meta_classes(self.dataset_meta, type(self).__name__)[0]
        ids = (self.dataset_meta or {}).get('category_ids')
        return list(ids) if ids is not None and len(ids) == len(classes) else list(range(len(classes)))

    def _write_prediction(self, ds: Mapping[str, Any], image_id: Any, pred: np.ndarray,
                          segments: list[dict[str, Any]]) -> dict[str, Any]:
        """Write one panopticapi PNG; return its JSON annotation (dataset category ids)."""
        cat_ids = self._dataset_category_ids()
        is_thing = meta_classes(self.dataset_meta, type(self).__name__)[1]
        name = sample_name(ds, image_id) + '.png'
        write_panoptic_png(osp.join(f'{self.outfile_prefix}.panoptic', name), pred)
        ids, counts = np.unique(pred, return_counts=True)
        areas = dict(zip(ids.tolist(), counts.tolist()))
        seg_json = []
        for seg in segments:
            c = seg['category_id']
            if not 0 <= c < len(cat_ids):
                raise PanopticFormatError(f'image {image_id!r}: prediction segment {seg["id"]} has category '
                                          f'{c} outside [0, {len(cat_ids)})')
            seg_json.append({
                'id': seg['id'],
                'category_id': cat_ids[c],
                'isthing': int(bool(is_thing[c])),
                'iscrowd': 0,
                'area': int(areas.get(seg['id'], 0))
            })
        return {'image_id': image_id, 'file_name': name, 'segments_info': seg_json}

    # ------------------------------------------------------------------------------------------ mmengine API
    def process(self, data_batch: Any, data_samples: Sequence[Mapping[str, Any]]) -> None:
        """Reduce each sample to sparse per-category PQ sums (and optionally write its prediction)."""
        num_classes = self._num_classes()
        category_index = {k: k for k in range(num_classes)}
        for i, ds in enumerate(data_samples):
            image_id = ds.get('img_id', ds.get('img_path', len(self.results) + i))
            if 'pred_panoptic_seg' not in ds:
                raise KeyError(f'image {image_id!r}: data sample has no "pred_panoptic_seg" (does the model predict '
                               'panoptic maps? e.g. model.test_cfg.panoptic_on=True)')
            pred = to_numpy(get_field(ds, 'pred_panoptic_seg', image_id))
            pred = pred[0] if pred.ndim == 3 else pred
            pred_segments = _clean_segments(ds.get('pred_segments_info'), 'prediction', image_id)
            item: dict[str, Any] = {}
            if self.outfile_prefix:
                item['annotation'] = self._write_prediction(ds, image_id, pred, pred_segments)
            if not self.format_only:
                gt = to_numpy(get_field(ds, 'gt_panoptic_seg', image_id))
                gt = gt[0] if gt.ndim == 3 else gt
                gt_segments = _clean_segments(ds.get('segments_info'), 'GT', image_id)
                stats = pq_image_stats(gt,
                                       gt_segments,
                                       pred,
                                       pred_segments,
                                       category_index,
                                       image_id=image_id)
                item['stats'] = stats.to_sparse()
            self.results.append(item)

    def compute_metrics(self, results: list) -> dict[str, float]:
        classes, is_thing = meta_classes(self.dataset_meta, type(self).__name__)
        if self.outfile_prefix:
            self._write_json([r['annotation'] for r in results])
        if self.format_only:
            print_log(f'panoptic predictions written to {self.outfile_prefix}.panoptic(.json)',
                      logger='current')
            return {}
        stats = PQStats.zeros(len(classes))
        for r in results:
            stats += PQStats.from_sparse(len(classes), r['stats'])
        summary = pq_summary(stats, list(range(len(classes))), is_thing)
        print_log('\n' + format_pq_table(summary), logger='current')
        metrics: dict[str, float] = {}
        for key, name in (('All', ''), ('Things', '_th'), ('Stuff', '_st')):
            for m in ('pq', 'sq', 'rq'):
                metrics[m.upper() + name] = 100 * summary[key][m]
        if self.classwise:
            for k, cname in enumerate(classes):
                for m in ('pq', 'sq', 'rq'):
                    metrics[f'{m.upper()}-{cname}'] = 100 * summary['per_class'][k][m]
        return metrics

    def _write_json(self, annotations: list[dict[str, Any]]) -> None:
        classes, is_thing = meta_classes(self.dataset_meta, type(self).__name__)
        cat_ids = self._dataset_category_ids()
        categories = [{
            'id': cid,
            'name': name,
            'isthing': int(bool(t))
        } for cid, name, t in zip(cat_ids, classes, is_thing)]
        path = f'{self.outfile_prefix}.panoptic.json'
        os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
        with open(path, 'w') as f:
            json.dump({'annotations': annotations, 'categories': categories}, f, default=_json_default)


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    raise TypeError(f'cannot serialise {type(obj).__name__} to JSON')
