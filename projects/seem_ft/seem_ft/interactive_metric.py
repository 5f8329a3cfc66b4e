"""``InteractiveNoCMetric``: SEEM's interactive segmentation scores from ``pred_interactive_ious``.

Source: SEEM v1.0 ``datasets/evaluation/interactive_evaluation.py`` (``InteractiveEvaluator``: NoC at IoU 0.5 /
0.8 / 0.85 / 0.9 and the mean IoU after the first click, ``miou@iter1``). NoC@t of an object is the number of
clicks after which its IoU first reaches t, or the click budget when it never does (the usual NoC definition of
the interactive-segmentation literature); the metric averages over every object of every image.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from mmengine.evaluator import BaseMetric

from ovseg.registry import METRICS

__all__ = ['InteractiveNoCMetric', 'number_of_clicks']


def number_of_clicks(ious: np.ndarray, threshold: float) -> np.ndarray:
    """Per object (rows of n×clicks IoUs): the first 1-based click with IoU ≥ ``threshold``, else ``clicks``."""
    reached = ious >= threshold
    first = reached.argmax(axis=1) + 1
    return np.where(reached.any(axis=1), first, ious.shape[1]).astype(np.float64)


@METRICS.register_module()
class InteractiveNoCMetric(BaseMetric):
    """NoC@50/80/85/90 and ``mIoU@1`` (×100) over all prompted objects; needs ``test_cfg.interactive_clicks``.

    Args:
        thresholds: IoU levels of the NoC scores (SEEM's 0.5, 0.8, 0.85, 0.9).
    """

    default_prefix: str | None = 'interactive'

    def __init__(self, thresholds: Sequence[float] = (0.5, 0.8, 0.85, 0.9), collect_device: str = 'cpu',
                 prefix: str | None = None, collect_dir: str | None = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix, collect_dir=collect_dir)
        self.thresholds = tuple(float(t) for t in thresholds)

    def process(self, data_batch: Any, data_samples: Sequence[Mapping[str, Any]]) -> None:
        for i, ds in enumerate(data_samples):
            if 'pred_interactive_ious' not in ds:
                image_id = ds.get('img_id', ds.get('img_path', len(self.results) + i))
                raise KeyError(f'image {image_id!r}: data sample has no "pred_interactive_ious" (set the model\'s '
                               'test_cfg.interactive_clicks > 0)')
            ious = np.asarray(ds['pred_interactive_ious'], dtype=np.float64)
            self.results.append(ious.reshape(-1, ious.shape[-1]) if ious.size else ious.reshape(0, 1))

    def compute_metrics(self, results: list) -> dict[str, float]:
        clicks = {r.shape[1] for r in results if len(r)}
        if len(clicks) > 1:
            raise ValueError(f'InteractiveNoCMetric: images were evaluated with different click budgets {clicks}')
        ious = np.concatenate([r for r in results if len(r)]) if clicks else np.zeros((0, 1))
        if not len(ious):
            raise ValueError('InteractiveNoCMetric: no object was prompted (no GT segments in the evaluated images)')
        out = {f'NoC@{round(t * 100)}': float(number_of_clicks(ious, t).mean()) for t in self.thresholds}
        out['mIoU@1'] = float(ious[:, 0].mean() * 100)
        out['objects'] = float(len(ious))
        return out
