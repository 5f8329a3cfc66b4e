"""mIoU / fwIoU / mACC / pACC of semantic label PNGs against GT label PNGs (matched by file stem).

    python tools/analysis/eval_semseg.py --gt-dir gt/ --pred-dir pred/ (--num-classes C | --vocabulary NAME)
        [--reduce-zero-label] [--convention detectron2|mmseg] [--ignore-index 255] [--out result.json]

``--reduce-zero-label`` applies mmseg's rule to the GT (0 -> ignore, others - 1), e.g. raw ADE20K labels.
"""
from __future__ import annotations

import argparse
import json
import os
import os.path as osp
import sys

sys.path.insert(0, osp.abspath(osp.join(osp.dirname(__file__), '..', '..')))

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from ovseg.evaluation.functional.sem_seg import (
    CONVENTIONS,
    SemSegStats,
    sem_seg_image_stats,  # noqa: E402
    sem_seg_summary)
from ovseg.cli import run_tool  # noqa: E402


def read_label_png(path: str) -> np.ndarray:
    """Single-channel label PNG (8 or 16 bit) -> int64 H×W."""
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


def _class_names(args: argparse.Namespace) -> list[str]:
    """Display names (first synonym) from ``--vocabulary``, else ``0..C-1``."""
    if args.vocabulary:
        from ovseg.datasets.vocabularies import load_vocabulary
        names = [syns[0] for syns in load_vocabulary(args.vocabulary)]
        if args.num_classes is not None and args.num_classes != len(names):
            raise ValueError(f'--num-classes {args.num_classes} disagrees with vocabulary size {len(names)}')
        return names
    if args.num_classes is None:
        raise ValueError('give --num-classes or --vocabulary')
    return [str(i) for i in range(args.num_classes)]


def evaluate_dirs(gt_dir: str,
                  pred_dir: str,
                  class_names: list[str],
                  convention: str = 'detectron2',
                  ignore_index: int = 255,
                  reduce_zero: bool = False,
                  gt_suffix: str = '.png',
                  pred_suffix: str = '.png') -> dict[str, float]:
    """Evaluate every GT PNG in ``gt_dir`` against the prediction with the same stem in ``pred_dir``."""
    names = sorted(f[:-len(gt_suffix)] for f in os.listdir(gt_dir) if f.endswith(gt_suffix))
    if not names:
        raise FileNotFoundError(f'no *{gt_suffix} label images in {gt_dir}')
    total = SemSegStats.zeros(len(class_names))
    for name in names:
        pred_path = osp.join(pred_dir, name + pred_suffix)
        if not osp.isfile(pred_path):
            raise FileNotFoundError(f'no prediction for GT image {name}: {pred_path} is missing')
        gt = read_label_png(osp.join(gt_dir, name + gt_suffix))
        if reduce_zero:
            gt = reduce_zero_label(gt, ignore_index)
        total += sem_seg_image_stats(read_label_png(pred_path),
                                     gt,
                                     len(class_names),
                                     ignore_index,
                                     image_id=name)
    return sem_seg_summary(total, class_names, convention)


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description='Semantic segmentation metrics of label PNG folders')
    parser.add_argument('--gt-dir', required=True)
    parser.add_argument('--pred-dir', required=True)
    parser.add_argument('--num-classes', type=int, default=None)
    parser.add_argument('--vocabulary', default=None, help='ovseg vocabulary name or file (class names)')
    parser.add_argument('--reduce-zero-label', action='store_true')
    parser.add_argument('--convention', choices=CONVENTIONS, default='detectron2')
    parser.add_argument('--ignore-index', type=int, default=255)
    parser.add_argument('--out', default=None, help='write all metrics as JSON')
    args = parser.parse_args(argv)
    res = evaluate_dirs(args.gt_dir, args.pred_dir, _class_names(args), args.convention, args.ignore_index,
                        args.reduce_zero_label)
    for key in ('mIoU', 'fwIoU', 'mACC', 'pACC'):
        print(f'{key:6s} {res[key]:7.3f}')
    if args.out:
        with open(args.out, 'w') as f:
            json.dump(res, f, indent=1)
    return res


if __name__ == '__main__':
    run_tool(main)  # one-line user errors; --debug or OVSEG_DEBUG=1 shows the traceback
