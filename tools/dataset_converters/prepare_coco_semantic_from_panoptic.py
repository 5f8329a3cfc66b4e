"""COCO-panoptic-format annotations → semantic label PNGs with contiguous class ids (255 = void).

The contiguous id of a category is its rank among the JSON's categories sorted by id, exactly as
``CocoPanopticDataset`` assigns it (COCO: 133 classes → 0..132). Crowd segments keep their class, as in
detectron2's ``prepare_coco_semantic_annos_from_panoptic_annos.py``; pixels outside every segment are 255.

Example (COCO)::

    python tools/dataset_converters/prepare_coco_semantic_from_panoptic.py \\
        --panoptic-json data/coco/annotations/panoptic_val2017.json \\
        --panoptic-root data/coco/annotations/panoptic_val2017 \\
        --out-dir data/coco/panoptic_semseg_val2017 --workers 8
"""
from __future__ import annotations

import argparse
import json
import os
import os.path as osp
import sys

import cv2
import numpy as np

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
from common import parallel_map, require_dir, require_file  # noqa: E402

from ovseg.cli import run_tool  # noqa: E402
from ovseg.datasets.panoptic_utils import segments_to_semantic  # noqa: E402
from ovseg.structures.panoptic_format import IGNORE_INDEX, read_panoptic_png  # noqa: E402


def convert_one(job: tuple[str, str, list[dict], dict[int, int]]) -> str:
    """Convert one panoptic PNG; returns the output path."""
    src, dst, segments, cat_map = job
    pan = read_panoptic_png(src)  # errors name the file (missing, 16-bit, not RGB)
    sem = segments_to_semantic(pan, segments, cat_map=cat_map)
    if not cv2.imwrite(dst, sem.astype(np.uint8)):
        raise OSError(f'cannot write {dst}')
    return dst


def convert(panoptic_json: str, panoptic_root: str, out_dir: str, workers: int = 1) -> int:
    """Convert every annotation of ``panoptic_json``; returns the number of PNGs written."""
    require_file(panoptic_json, 'panoptic JSON')
    require_dir(panoptic_root, 'panoptic PNG')
    with open(panoptic_json, encoding='utf-8') as f:
        doc = json.load(f)
    cat_ids = sorted(int(c['id']) for c in doc['categories'])
    if len(cat_ids) >= IGNORE_INDEX:
        raise SystemExit(f'error: {len(cat_ids)} categories do not fit 8-bit labels below {IGNORE_INDEX}')
    cat_map = {cid: i for i, cid in enumerate(cat_ids)}
    jobs = []
    for a, ann in enumerate(doc['annotations']):
        for s, seg in enumerate(ann['segments_info']):
            if int(seg['category_id']) not in cat_map:
                raise SystemExit(f"error: {panoptic_json}: annotations[{a}].segments_info[{s}].category_id "
                                 f"{seg['category_id']} is not in categories")
        name = ann['file_name']
        jobs.append((osp.join(panoptic_root, name), osp.join(out_dir, osp.splitext(name)[0] + '.png'),
                     ann['segments_info'], cat_map))
    os.makedirs(out_dir, exist_ok=True)
    parallel_map(convert_one, jobs, workers, 'panoptic → semantic')
    return len(jobs)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--panoptic-json', required=True, help='COCO panoptic JSON')
    parser.add_argument('--panoptic-root', required=True, help='folder of panoptic PNGs')
    parser.add_argument('--out-dir', required=True, help='output folder for semantic PNGs')
    parser.add_argument('--workers', type=int, default=max(1, (os.cpu_count() or 1) // 2))
    args = parser.parse_args(argv)
    n = convert(args.panoptic_json, args.panoptic_root, args.out_dir, args.workers)
    print(f'wrote {n} semantic PNGs to {args.out_dir}', file=sys.stderr)
    return 0


if __name__ == '__main__':
    run_tool(main)  # one-line user errors; --debug or OVSEG_DEBUG=1 shows the traceback
