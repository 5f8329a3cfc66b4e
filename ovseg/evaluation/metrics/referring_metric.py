"""``ReferringSegMetric``: cIoU / gIoU of referring segmentation (RefCOCO/+/g), as LISA and Sa2VA report them."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from mmengine.evaluator import BaseMetric
from mmengine.logging import print_log

from ovseg.registry import METRICS

from ..functional.referring import ReferringStats, referring_image_stats, referring_summary
from ._utils import get_field, to_numpy


@METRICS.register_module()
class ReferringSegMetric(BaseMetric):
    """Referring-segmentation IoU over every expression of the evaluated split (numbers ×100).

    One data sample is one image with N expressions (LISA's grouping): it holds ``pred_masks`` (N×H×W
    binary, already thresholded) and ``gt_masks`` (N×H×W binary; ``ignore_index`` pixels excluded) at the
    same size, one pair per expression in the same order (fields documented in
    ``ovseg/structures/seg_data_sample.py``). ``process`` keeps four numbers per image.

    Returns ``cIoU`` (cumulative intersection / cumulative union) and ``gIoU`` (mean per-expression IoU, an
    expression with an empty union counts as 1); see ``ovseg/evaluation/functional/referring.py``.
    """

    default_prefix: str | None = 'refer'

    def __init__(self,
                 ignore_index: int | None = 255,
                 collect_device: str = 'cpu',
                 prefix: str | None = None,
                 collect_dir: str | None = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix, collect_dir=collect_dir)
        self.ignore_index = ignore_index

    def process(self, data_batch: Any, data_samples: Sequence[Mapping[str, Any]]) -> None:
        for i, ds in enumerate(data_samples):
            image_id = ds.get('img_id', ds.get('img_path', len(self.results) + i))
            pred = to_numpy(get_field(ds, 'pred_masks', image_id))
            gt = to_numpy(get_field(ds, 'gt_masks', image_id))
            if pred.ndim == 2:
                pred = pred[None]
            if gt.ndim == 2:
                gt = gt[None]
            stats = referring_image_stats(pred, gt, self.ignore_index, image_id=image_id)
            self.results.append((stats.intersection, stats.union, stats.iou_sum, stats.count))

    def compute_metrics(self, results: list) -> dict[str, float]:
        total = ReferringStats()
        for inter, union, iou_sum, count in results:
            total += ReferringStats(inter, union, iou_sum, count)
        summary = referring_summary(total)
        print_log(f"referring segmentation: cIoU {100 * summary['cIoU']:.2f}  gIoU {100 * summary['gIoU']:.2f}  "
                  f"({summary['num_expressions']} expressions)", logger='current')
        return {'cIoU': 100 * summary['cIoU'], 'gIoU': 100 * summary['gIoU']}
