"""Referring-segmentation cIoU / gIoU of a prediction file against a GT file (RefCOCO/+/g, LISA / Sa2VA rules).

    python tools/analysis/eval_refseg.py --gt GT.json --pred PRED.json [--out OUT.json] [--skip-missing-for-ciou]

GT.json: ``{"annotations": [{"sent_id", "image_id", "segmentation": RLE}]}``; PRED.json: ``[{"sent_id",
"segmentation": RLE or null}]`` — a sentence missing from PRED, or ``null``, is an empty mask. OUT.json:
``{"cIoU", "gIoU", "num_sentences", "num_missing"}`` with IoUs as fractions. ``--skip-missing-for-ciou`` applies
Sa2VA's evaluation-script rule (a sentence without a mask is left out of cIoU, counts 0 in gIoU). Formats and
rules: ``ovseg/evaluation/functional/referring_io.py``.
"""
from __future__ import annotations

import argparse
import json
import os.path as osp
import sys

sys.path.insert(0, osp.abspath(osp.join(osp.dirname(__file__), '..', '..')))

# numpy + pycocotools only: no torch / mmengine import
from ovseg.cli import run_tool  # noqa: E402
from ovseg.evaluation.functional.referring_io import evaluate_refseg_files  # noqa: E402


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description='RefCOCO-style cIoU / gIoU of RLE predictions')
    parser.add_argument('--gt', required=True, help='GT JSON: {"annotations": [{sent_id, image_id, segmentation}]}')
    parser.add_argument('--pred', required=True, help='predictions JSON: [{sent_id, segmentation or null}]')
    parser.add_argument('--out', default=None, help='write {cIoU, gIoU, num_sentences, num_missing} as JSON')
    parser.add_argument('--skip-missing-for-ciou', action='store_true',
                        help="Sa2VA script rule: sentences without a mask are left out of cIoU (0 in gIoU)")
    args = parser.parse_args(argv)
    res = evaluate_refseg_files(args.gt, args.pred, args.skip_missing_for_ciou)
    print(f"cIoU {100 * res['cIoU']:.2f}  gIoU {100 * res['gIoU']:.2f}  "
          f"({res['num_sentences']} sentences, {res['num_missing']} without a mask)")
    if args.out:
        with open(args.out, 'w', encoding='utf-8') as f:
            json.dump(res, f, indent=2)
    return res


if __name__ == '__main__':
    run_tool(main)
