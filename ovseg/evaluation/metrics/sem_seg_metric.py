"""``SemSegMetric``: mIoU / fwIoU / mACC / pACC with detectron2's (default) or mmseg's class averaging."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from mmengine.evaluator import BaseMetric
from mmengine.logging import print_log

from ovseg.registry import METRICS
from ovseg.structures.panoptic_format import IGNORE_INDEX, check_ignore_index

from ..functional.sem_seg import CONVENTIONS, SemSegStats, sem_seg_image_stats, sem_seg_summary
from ._utils import get_field, meta_classes, to_numpy


def semantic_from_panoptic(pan: np.ndarray, segments: Sequence[Mapping[str, Any]],
                           ignore_index: int) -> np.ndarray:
    """Semantic labels from a panoptic GT (every listed segment, crowd included; the rest ignored)."""
    sem = np.full(pan.shape, ignore_index, dtype=np.int64)
    ids = np.asarray([int(s['id']) for s in segments], dtype=np.int64)
    if ids.size:
        order = np.argsort(ids, kind='stable')
        sids = ids[order]
        cats = np.asarray([int(s['category_id']) for s in segments], dtype=np.int64)[order]
        pos = np.clip(np.searchsorted(sids, pan), 0, len(sids) - 1)
        hit = sids[pos] == pan
        sem[hit] = cats[pos[hit]]
    return sem


@METRICS.register_module()
class SemSegMetric(BaseMetric):
    """Semantic segmentation metrics from per-class TP / predicted / GT pixel counts (O(C) per image).

    Reads ``pred_sem_seg.data`` and ``gt_sem_seg.data``. Without ``gt_sem_seg`` the GT is derived from
    ``gt_panoptic_seg`` + ``segments_info`` (unlisted ids and VOID ignored). FC-CLIP's ADE20K-150 mIoU uses the
    SceneParsing labels instead: the ADE panoptic eval config loads them as ``gt_sem_seg``.

    Args:
        convention: ``'detectron2'`` (classes absent from the whole GT are left out of the means) or
            ``'mmseg'`` (``np.nanmean``; a predicted-but-absent class counts with IoU 0).
        ignore_index: GT label that is not evaluated; default: ``dataset_meta['ignore_index']`` (255, or
            65535 for A-847 / PC-459 where 255 is a class), the same value the dataset's loader keeps.
        nan_to_num: mmseg's option: replace NaN per-class values before the mean (mmseg convention only).
        classwise: also return ``IoU-<class>`` / ``ACC-<class>``.
    """

    default_prefix: str | None = 'sem_seg'

    def __init__(self,
                 convention: str = 'detectron2',
                 ignore_index: int | None = None,
                 nan_to_num: float | None = None,
                 classwise: bool = False,
                 collect_device: str = 'cpu',
                 prefix: str | None = None,
                 collect_dir: str | None = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix, collect_dir=collect_dir)
        if convention not in CONVENTIONS:
            raise ValueError(f'SemSegMetric convention must be one of {CONVENTIONS}, got {convention!r}')
        if nan_to_num is not None and convention != 'mmseg':
            raise ValueError('nan_to_num is an mmseg-convention option; use convention="mmseg"')
        self.convention = convention
        self.ignore_index = ignore_index
        self.nan_to_num = nan_to_num
        self.classwise = classwise

    def _ignore_index(self, num_classes: int) -> int:
        if self.ignore_index is not None:
            ignore = self.ignore_index
        else:
            ignore = (self.dataset_meta or {}).get('ignore_index', IGNORE_INDEX)
        return check_ignore_index(ignore, num_classes, f'{type(self).__name__} ignore_index')

    def process(self, data_batch: Any, data_samples: Sequence[Mapping[str, Any]]) -> None:
        classes, _ = meta_classes(self.dataset_meta, type(self).__name__)
        ignore = self._ignore_index(len(classes))
        for i, ds in enumerate(data_samples):
            image_id = ds.get('img_id', ds.get('img_path', len(self.results) + i))
            pred = to_numpy(get_field(ds, 'pred_sem_seg', image_id))
            if 'gt_sem_seg' in ds:
                gt = to_numpy(get_field(ds, 'gt_sem_seg', image_id))
            elif 'gt_panoptic_seg' in ds:
                pan = to_numpy(get_field(ds, 'gt_panoptic_seg', image_id))
                gt = semantic_from_panoptic(pan, ds.get('segments_info') or [], ignore)
            else:
                raise KeyError(
                    f'image {image_id!r}: data sample has neither "gt_sem_seg" nor "gt_panoptic_seg"')
            stats = sem_seg_image_stats(pred, gt, len(classes), ignore, image_id=image_id)
            self.results.append((stats.tp, stats.pos_pred, stats.pos_gt))

    def compute_metrics(self, results: list) -> dict[str, float]:
        classes, _ = meta_classes(self.dataset_meta, type(self).__name__)
        total = SemSegStats.zeros(len(classes))
        for tp, pos_pred, pos_gt in results:
            total += SemSegStats(np.asarray(tp), np.asarray(pos_pred), np.asarray(pos_gt))
        res = sem_seg_summary(total, classes, self.convention, self.nan_to_num)
        print_log('semantic segmentation ({}): mIoU {:.2f}  fwIoU {:.2f}  mACC {:.2f}  pACC {:.2f}'.format(
            self.convention, res['mIoU'], res['fwIoU'], res['mACC'], res['pACC']),
                  logger='current')
        if not self.classwise:
            res = {k: v for k, v in res.items() if k in ('mIoU', 'fwIoU', 'mACC', 'pACC')}
        return res
