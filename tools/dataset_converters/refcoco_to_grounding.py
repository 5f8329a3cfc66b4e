"""RefCOCO / RefCOCO+ / RefCOCOg (REFER layout) → SEEM's grounding JSON and the GT file of eval_refseg.py.

    python tools/dataset_converters/refcoco_to_grounding.py --data-root data/ref_seg --dataset refcocog \
        [--split-by umd] --split val --out refcocog_umd_val.json [--refseg-gt refcocog_umd_val_gt.json]

Reads ``<data-root>/<dataset>/refs(<split-by>).p`` (plain-data pickle only; anything that would run code is refused)
and ``instances.json``. Formats and split rules: ``ovseg/datasets/refer.py``.
"""
from __future__ import annotations

import argparse
import json
import os.path as osp
import sys

sys.path.insert(0, osp.abspath(osp.join(osp.dirname(__file__), '..', '..')))

from ovseg.cli import run_tool  # noqa: E402
from ovseg.datasets.refer import (  # noqa: E402
    REFER_DATASETS,
    grounding_refseg_gt,
    load_refs,
    read_instances,
    refer_grounding_json,
    refs_path,
)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description='REFER annotations → grounding JSON (+ eval_refseg GT)')
    parser.add_argument('--data-root', required=True, help='folder holding refcoco/, refcoco+/, refcocog/')
    parser.add_argument('--dataset', required=True, help=f'one of {sorted(REFER_DATASETS)} (or a folder name '
                        'with --split-by)')
    parser.add_argument('--split-by', default=None, help='unc / umd / google (default: the dataset\'s usual one)')
    parser.add_argument('--split', default=None, help='train / val / test / testA / testB (default: all refs)')
    parser.add_argument('--out', required=True, help='grounding JSON to write')
    parser.add_argument('--refseg-gt', default=None, help='also write the eval_refseg.py GT (one RLE per sentence)')
    args = parser.parse_args(argv)
    refs_file = refs_path(args.data_root, args.dataset, args.split_by)
    instances_file = osp.join(args.data_root, args.dataset, 'instances.json')
    refs = load_refs(refs_file)
    grounding = refer_grounding_json(refs, read_instances(instances_file), args.split, source=instances_file)
    with open(args.out, 'w', encoding='utf-8') as f:
        json.dump(grounding, f)
    n_sent = sum(len(a['sentences']) for a in grounding['annotations'])
    print(f"{refs_file} split {args.split!r}: {len(grounding['annotations'])} refs, {n_sent} sentences, "
          f"{len(grounding['images'])} images -> {args.out}")
    if args.refseg_gt:
        with open(args.refseg_gt, 'w', encoding='utf-8') as f:
            json.dump(grounding_refseg_gt(grounding, source=args.out), f)
        print(f'eval_refseg GT ({n_sent} sentences) -> {args.refseg_gt}')
    return grounding


if __name__ == '__main__':
    run_tool(main)
