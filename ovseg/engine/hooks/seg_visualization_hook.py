"""Write prediction overlays during test/val (``tools/test.py --show-dir``)."""
from __future__ import annotations

import os
import os.path as osp
from collections.abc import Sequence

import cv2
import numpy as np
from mmengine.hooks import Hook

from ovseg.registry import HOOKS
from ovseg.visualization import default_palette, draw_panoptic, draw_semantic


@HOOKS.register_module()
class SegVisualizationHook(Hook):
    """Save an overlay PNG per test image: panoptic when predicted, else semantic.

    Args:
        draw: switch the hook on (kept for mmdet-style configs).
        out_dir: folder for overlays, relative to the run's log dir unless absolute.
        interval: draw every ``interval``-th batch.
    """

    priority = 'NORMAL'

    def __init__(self, draw: bool = True, out_dir: str = 'vis', interval: int = 1) -> None:
        self.draw = draw
        self.out_dir = out_dir
        self.interval = interval

    def _target_dir(self, runner) -> str:
        out = self.out_dir if osp.isabs(self.out_dir) else osp.join(runner.log_dir, self.out_dir)
        os.makedirs(out, exist_ok=True)
        return out

    def after_test_iter(self, runner, batch_idx: int, data_batch=None, outputs: Sequence | None = None) -> None:
        if not self.draw or outputs is None or batch_idx % self.interval:
            return
        meta = runner.test_dataloader.dataset.metainfo
        classes = meta.get('classes', ())
        palette = meta.get('palette') or default_palette(len(classes))
        out_dir = self._target_dir(runner)
        for sample in outputs:
            img = cv2.imread(sample.img_path, cv2.IMREAD_COLOR)[:, :, ::-1]
            if 'pred_panoptic_seg' in sample:
                pan = sample.pred_panoptic_seg.data[0].cpu().numpy()
                vis = draw_panoptic(img, pan, sample.get('pred_segments_info', []), classes, palette)
            elif 'pred_sem_seg' in sample:
                sem = sample.pred_sem_seg.data[0].cpu().numpy().astype(np.int64)
                vis = draw_semantic(img, sem, palette)
            else:
                continue
            name = osp.splitext(osp.basename(sample.img_path))[0] + '.png'
            cv2.imwrite(osp.join(out_dir, name), np.ascontiguousarray(vis[:, :, ::-1]))
