"""File-based semantic evaluation: label PNG folders matched by file stem, spread over worker processes.

numpy + OpenCV only; ``tools/analysis/eval_semseg.py`` is the command line around :func:`evaluate_label_dirs`.
"""
from __future__ import annotations

import multiprocessing
import os
import os.path as osp

import cv2
import numpy as np

from ovseg.structures.panoptic_format import check_ignore_index, default_ignore_index

from .sem_seg import SemSegStats, sem_seg_image_stats, sem_seg_summary

__all__ = ['read_label_png', 'reduce_zero_label', 'evaluate_label_dirs']


def read_label_png(path: str) -> np.ndarray:
    """Single-channel label image (8/16-bit PNG or TIFF) -> int64 H×W; errors name the file."""
    img = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    if img is None:
        raise FileNotFoundError(f'cannot read label image {path}')
    if img.ndim != 2:
        raise ValueError(f'label image {path} must be single-channel, got shape {img.shape}')
    return img.astype(np.int64)


def reduce_zero_label(gt: np.ndarray, ignore_index: int = 255) -> np.ndarray:
    """mmseg's ``reduce_zero_label``: 0 -> ignore, other labels shifted down by one."""
    out = gt - 1
    out[gt == 0] = ignore_index
    out[gt == ignore_index] = ignore_index
    return out


def _image_stats(job: tuple[str, str, str, int, int, bool]) -> SemSegStats:
    """Worker: statistics of one (GT, prediction) pair."""
    name, gt_path, pred_path, num_classes, ignore_index, reduce_zero = job
    gt = read_label_png(gt_path)
    if reduce_zero:
        gt = reduce_zero_label(gt, ignore_index)
    return sem_seg_image_stats(read_label_png(pred_path), gt, num_classes, ignore_index, image_id=name)


def evaluate_label_dirs(gt_dir: str,
                        pred_dir: str,
                        class_names: list[str],
                        convention: str = 'detectron2',
                        ignore_index: int | None = None,
                        reduce_zero: bool = False,
                        gt_suffix: str = '.png',
                        pred_suffix: str = '.png',
                        workers: int = 1) -> dict[str, float]:
    """Evaluate every GT label map in ``gt_dir`` against the prediction with the same stem in ``pred_dir``.

    ``ignore_index`` None = the dataset rule the loader and ``SemSegMetric`` use (255, or 65535 for more than
    255 classes: :func:`ovseg.structures.panoptic_format.default_ignore_index`). ``workers > 1`` decodes and counts
    images in a process pool; the per-class counts are integers, so the result does not depend on the number of
    workers.
    """
    if ignore_index is None:
        ignore_index = default_ignore_index(len(class_names))
    ignore_index = check_ignore_index(ignore_index, len(class_names), '--ignore-index')
    names = sorted(f[:-len(gt_suffix)] for f in os.listdir(gt_dir) if f.endswith(gt_suffix))
    if not names:
        raise FileNotFoundError(f'no *{gt_suffix} label images in {gt_dir}')
    jobs = []
    for name in names:
        pred_path = osp.join(pred_dir, name + pred_suffix)
        if not osp.isfile(pred_path):
            raise FileNotFoundError(f'no prediction for GT image {name}: {pred_path} is missing')
        jobs.append((name, osp.join(gt_dir, name + gt_suffix), pred_path, len(class_names), ignore_index, reduce_zero))
    total = SemSegStats.zeros(len(class_names))
    workers = max(1, min(workers, len(jobs)))
    if workers > 1:
        with multiprocessing.get_context().Pool(workers) as pool:
            for stats in pool.imap_unordered(_image_stats, jobs, chunksize=max(1, len(jobs) // (4 * workers))):
                total += stats
    else:
        for job in jobs:
            total += _image_stats(job)
    return sem_seg_summary(total, class_names, convention)
