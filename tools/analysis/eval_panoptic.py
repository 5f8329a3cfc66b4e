"""Panoptic quality of panopticapi-format predictions: a fast drop-in for panopticapi's ``pq_compute``.

    python tools/analysis/eval_panoptic.py --gt-json gt.json --gt-folder gt/ \
        --pred-json pred.json --pred-folder pred/ [--out result.json] [--workers N]

Same rules, errors and result structure as panopticapi (``All``/``Things``/``Stuff`` with pq, sq, rq as
fractions and ``n``, plus ``per_class``); see ``ovseg/evaluation/functional/panoptic_quality.py``.
"""
from __future__ import annotations

import argparse
import json
import os.path as osp
import sys
import time
from collections.abc import Mapping
from typing import Any

sys.path.insert(0, osp.abspath(osp.join(osp.dirname(__file__), '..', '..')))

# numpy + OpenCV only: no torch / mmengine import (see ovseg/evaluation/functional/__init__.py)
from ovseg.cli import run_tool  # noqa: E402
from ovseg.evaluation.functional.panoptic_io import format_pq_table  # noqa: E402
from ovseg.evaluation.functional.panoptic_io import pq_compute as _pq_compute  # noqa: E402
from ovseg.evaluation.functional.workers import usable_cores  # noqa: E402


def pq_compute(gt_json: str | Mapping[str, Any],
               pred_json: str | Mapping[str, Any],
               gt_folder: str | None = None,
               pred_folder: str | None = None,
               workers: int | None = None) -> dict[str, Any]:
    """panopticapi ``pq_compute`` (same arguments plus ``workers``, default: every usable core, as panopticapi
    uses); returns the same dict, fractions."""
    workers = usable_cores() if workers is None else workers
    return _pq_compute(gt_json, pred_json, gt_folder, pred_folder, workers=workers)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Panoptic quality (panopticapi rules) of PNG+JSON predictions')
    parser.add_argument('--gt-json', required=True, help='panoptic GT JSON (annotations + categories)')
    parser.add_argument('--pred-json', required=True, help='prediction JSON (annotations)')
    parser.add_argument('--gt-folder', default=None, help='GT PNG folder (default: GT JSON path minus .json)')
    parser.add_argument('--pred-folder',
                        default=None,
                        help='prediction PNG folder (default: JSON minus .json)')
    parser.add_argument('--out', default=None, help='write the result dict (pq_compute structure) as JSON')
    parser.add_argument('--workers', type=int, default=usable_cores(),
                        help='worker processes (default: the usable cores, like panopticapi; 1 gives sums '
                        'bit-identical to panopticapi single-process)')
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    start = time.time()
    results = pq_compute(args.gt_json, args.pred_json, args.gt_folder, args.pred_folder, workers=args.workers)
    print(format_pq_table(results))
    print('Time elapsed: {:0.2f} seconds'.format(time.time() - start))
    if args.out:
        with open(args.out, 'w') as f:
            json.dump(results, f, indent=1)
    return results


if __name__ == '__main__':
    run_tool(main)  # one-line user errors; --debug or OVSEG_DEBUG=1 shows the traceback
