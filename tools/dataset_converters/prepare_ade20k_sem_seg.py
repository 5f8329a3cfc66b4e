"""ADE20K-150 (SceneParsing, ADEChallengeData2016) label PNGs → contiguous labels 0..149 with 255 ignore.

Same as detectron2's ``datasets/prepare_ade20k_sem_seg.py``: ``label - 1`` on uint8, so the unlabelled 0
wraps to 255. Output goes to ``<root>/annotations_detectron2/{training,validation}``; alternatively skip
this step and use ``SemSegDataset(reduce_zero_label=True)`` on the raw PNGs (identical labels).

Example::

    python tools/dataset_converters/prepare_ade20k_sem_seg.py --root data/ADEChallengeData2016
"""
from __future__ import annotations

import argparse
import glob
import os
import os.path as osp
import sys

import cv2
import numpy as np

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
from common import parallel_map, require_dir  # noqa: E402

from ovseg.cli import run_tool  # noqa: E402


def convert_one(job: tuple[str, str]) -> str:
    src, dst = job
    label = cv2.imread(src, cv2.IMREAD_UNCHANGED)
    if label is None or label.ndim != 2 or label.dtype != np.uint8:
        raise ValueError(f'{src}: expected a single-channel 8-bit label PNG')
    if not cv2.imwrite(dst, label - np.uint8(1)):  # uint8 wrap-around: 0 (unlabelled) → 255
        raise OSError(f'cannot write {dst}')
    return dst


def convert(root: str, splits: list[str], workers: int = 1) -> int:
    total = 0
    for split in splits:
        src_dir = require_dir(osp.join(root, 'annotations', split), f'ADE20K {split} annotation')
        out_dir = osp.join(root, 'annotations_detectron2', split)
        os.makedirs(out_dir, exist_ok=True)
        files = sorted(glob.glob(osp.join(src_dir, '*.png')))
        if not files:
            raise SystemExit(f'error: no PNG labels in {src_dir}')
        parallel_map(convert_one, [(f, osp.join(out_dir, osp.basename(f))) for f in files], workers,
                     f'ADE20K {split}')
        total += len(files)
    return total


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--root', default='data/ADEChallengeData2016', help='ADEChallengeData2016 folder')
    parser.add_argument('--splits', nargs='+', default=['training', 'validation'])
    parser.add_argument('--workers', type=int, default=max(1, (os.cpu_count() or 1) // 2))
    args = parser.parse_args(argv)
    n = convert(args.root, args.splits, args.workers)
    print(f'converted {n} label maps', file=sys.stderr)
    return 0


if __name__ == '__main__':
    run_tool(main)  # one-line user errors; --debug or OVSEG_DEBUG=1 shows the traceback
