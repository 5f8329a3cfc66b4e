"""mIoU / fwIoU / mACC / pACC of semantic label PNGs against GT label PNGs (matched by file stem).

    python tools/analysis/eval_semseg.py --gt-dir gt/ --pred-dir pred/ (--num-classes C | --vocabulary NAME)
        [--reduce-zero-label] [--convention detectron2|mmseg] [--ignore-index N] [--gt-suffix .tif]
        [--out result.json] [--workers N (default: the usable cores)]

``--reduce-zero-label`` applies mmseg's rule to the GT (0 -> ignore, others - 1), e.g. raw ADE20K labels.
``--ignore-index`` defaults to the dataset rule the loader and ``SemSegMetric`` use: 255, or 65535 when there
are more than 255 classes (A-847 / PC-459 16-bit TIFFs, where 255 is a class).
"""
from __future__ import annotations

import argparse
import json
import os.path as osp
import sys

sys.path.insert(0, osp.abspath(osp.join(osp.dirname(__file__), '..', '..')))

# numpy + OpenCV only: no torch / mmengine import (see ovseg/evaluation/functional/__init__.py)
from ovseg.cli import run_tool  # noqa: E402
from ovseg.evaluation.functional.sem_seg import CONVENTIONS  # noqa: E402
from ovseg.evaluation.functional.sem_seg_io import evaluate_label_dirs  # noqa: E402
from ovseg.evaluation.functional.workers import usable_cores  # noqa: E402


def _class_names(args: argparse.Namespace) -> list[str]:
    """Display names (first synonym) from ``--vocabulary``, else ``0..C-1``."""
    if args.vocabulary:
        from ovseg.vocabulary import load_vocabulary  # only with --vocabulary
        names = [syns[0] for syns in load_vocabulary(args.vocabulary)]
        if args.num_classes is not None and args.num_classes != len(names):
            raise ValueError(f'--num-classes {args.num_classes} disagrees with vocabulary size {len(names)}')
        return names
    if args.num_classes is None:
        raise ValueError('give --num-classes or --vocabulary')
    return [str(i) for i in range(args.num_classes)]


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description='Semantic segmentation metrics of label PNG folders')
    parser.add_argument('--gt-dir', required=True)
    parser.add_argument('--pred-dir', required=True)
    parser.add_argument('--num-classes', type=int, default=None)
    parser.add_argument('--vocabulary', default=None, help='ovseg vocabulary name or file (class names)')
    parser.add_argument('--reduce-zero-label', action='store_true')
    parser.add_argument('--convention', choices=CONVENTIONS, default='detectron2')
    parser.add_argument('--ignore-index', type=int, default=None,
                        help='GT value not evaluated (default 255, or 65535 for more than 255 classes)')
    parser.add_argument('--gt-suffix', default='.png', help="GT file ending, e.g. '.tif' for A-847 / PC-459")
    parser.add_argument('--pred-suffix', default='.png')
    parser.add_argument('--out', default=None, help='write all metrics as JSON')
    parser.add_argument('--workers', type=int, default=usable_cores(),
                        help='worker processes (default: the usable cores)')
    args = parser.parse_args(argv)
    res = evaluate_label_dirs(args.gt_dir, args.pred_dir, _class_names(args), args.convention, args.ignore_index,
                              args.reduce_zero_label, args.gt_suffix, args.pred_suffix, workers=args.workers)
    for key in ('mIoU', 'fwIoU', 'mACC', 'pACC'):
        print(f'{key:6s} {res[key]:7.3f}')
    if args.out:
        with open(args.out, 'w') as f:
            json.dump(res, f, indent=1)
    return res


if __name__ == '__main__':
    run_tool(main)  # one-line user errors; --debug or OVSEG_DEBUG=1 shows the traceback
