"""ADE20K-150 semantic + instance annotations → COCO panoptic format (``ade20k_panoptic_{train,val}``).

Follows detectron2/FC-CLIP ``datasets/prepare_ade20k_pan_seg.py``: categories are the 150 SceneParsing
classes (ids 0..149, 100 of them things); stuff segments come from ``annotations/<split>/*.png`` (label−1),
thing segments from ``annotations_instance/<split>/*.png`` (R = instance category 1..100, G = instance id),
pasted over the stuff. Instance category k is the k-th thing class in id order (the official
``ade20k_instance_catid_mapping.txt`` is exactly this order-preserving map).

The JSON is the official one segment for segment: a stuff segment's ``area`` and ``bbox`` are measured on
the semantic map *before* the things are pasted, and a stuff segment that the things cover completely stays
in ``segments_info`` although the PNG no longer shows it. panopticapi takes the GT area from the JSON, so
both choices change PQ (a larger union, and an unmatchable segment counted as a false negative); the
official numbers were computed this way. Only the segment ids differ: ``(category + 1) * 1000 + n`` instead
of panopticapi ``IdGenerator`` colours, which PQ never looks at
(``tests/datasets/test_converters.py`` checks both against a transcription of the official script).

Example::

    python tools/dataset_converters/prepare_ade20k_panoptic.py --root data/ADEChallengeData2016
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
from common import parallel_map, require_dir  # noqa: E402

from ovseg.cli import run_tool  # noqa: E402
from ovseg.datasets.panoptic_utils import bbox_of_mask  # noqa: E402
from ovseg.structures.panoptic_format import write_panoptic_png  # noqa: E402
from ovseg.vocabulary import load_category_meta  # noqa: E402

SPLITS = {'training': 'train', 'validation': 'val'}


def ade_categories() -> list[dict]:
    return [dict(id=c['id'], name=c['name'], isthing=c['isthing'], color=c['color'])
            for c in load_category_meta('ade20k_150')]


def convert_one(job: tuple[str, str, str, str, list[int], list[bool]]) -> tuple[dict, dict]:
    """Build one panoptic PNG; returns its (image, annotation) JSON entries."""
    stem, sem_path, ins_path, out_path, thing_ids, isthing = job
    sem = cv2.imread(sem_path, cv2.IMREAD_UNCHANGED)
    ins = cv2.imread(ins_path, cv2.IMREAD_COLOR)
    if sem is None or ins is None:
        raise FileNotFoundError(f'missing annotation for {stem}: {sem_path} / {ins_path}')
    if sem.shape[:2] != ins.shape[:2]:
        raise ValueError(f'{stem}: semantic {sem.shape[:2]} and instance {ins.shape[:2]} sizes differ')
    cats = sem.astype(np.int64) - 1  # 0 (unlabelled) → -1
    pan = np.zeros(sem.shape, dtype=np.int64)
    segments = []
    # Stuff first, with area / bbox of the semantic mask (the official script measures before pasting).
    for cat in np.unique(cats).tolist():
        if cat < 0 or isthing[cat]:
            continue
        mask = cats == cat
        seg_id = (cat + 1) * 1000
        pan[mask] = seg_id
        segments.append(dict(id=seg_id, category_id=cat, area=int(mask.sum()), bbox=bbox_of_mask(mask),
                             iscrowd=0))
    ins_cat, ins_id = ins[..., 2].astype(np.int64), ins[..., 1].astype(np.int64)  # cv2: BGR
    count: dict[int, int] = {}
    for k in np.unique(ins_id).tolist():
        if k == 0:
            continue
        mask = ins_id == k
        inst_cats = np.unique(ins_cat[mask])
        if len(inst_cats) != 1 or not 1 <= inst_cats[0] <= len(thing_ids):
            raise ValueError(f'{ins_path}: instance {k} has category values {inst_cats.tolist()}')
        cat = thing_ids[int(inst_cats[0]) - 1]
        count[cat] = count.get(cat, 0) + 1
        seg_id = (cat + 1) * 1000 + count[cat]
        pan[mask] = seg_id  # things pasted over stuff; stuff JSON entries keep their pre-paste area
        segments.append(dict(id=seg_id, category_id=cat, area=int(mask.sum()), bbox=bbox_of_mask(mask),
                             iscrowd=0))
    write_panoptic_png(out_path, pan)
    image = dict(id=stem, file_name=stem + '.jpg', height=int(sem.shape[0]), width=int(sem.shape[1]))
    return image, dict(image_id=stem, file_name=stem + '.png', segments_info=segments)


def convert(root: str, splits: list[str], workers: int = 1) -> None:
    categories = ade_categories()
    isthing = [bool(c['isthing']) for c in categories]
    thing_ids = [c['id'] for c in categories if c['isthing']]
    for split in splits:
        name = SPLITS.get(split, split)
        sem_dir = require_dir(osp.join(root, 'annotations', split), f'ADE20K {split} semantic')
        ins_dir = require_dir(osp.join(root, 'annotations_instance', split), f'ADE20K {split} instance')
        out_dir = osp.join(root, f'ade20k_panoptic_{name}')
        os.makedirs(out_dir, exist_ok=True)
        stems = sorted(f[:-4] for f in os.listdir(sem_dir) if f.endswith('.png'))
        if not stems:
            raise SystemExit(f'error: no PNGs in {sem_dir}')
        jobs = [(s, osp.join(sem_dir, s + '.png'), osp.join(ins_dir, s + '.png'),
                 osp.join(out_dir, s + '.png'), thing_ids, isthing) for s in stems]
        results = parallel_map(convert_one, jobs, workers, f'ADE20K panoptic {split}')
        doc = dict(images=[r[0] for r in results], annotations=[r[1] for r in results], categories=categories)
        with open(osp.join(root, f'ade20k_panoptic_{name}.json'), 'w', encoding='utf-8') as f:
            json.dump(doc, f)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--root', default='data/ADEChallengeData2016')
    parser.add_argument('--splits', nargs='+', default=['training', 'validation'])
    parser.add_argument('--workers', type=int, default=max(1, (os.cpu_count() or 1) // 2))
    args = parser.parse_args(argv)
    convert(args.root, args.splits, args.workers)
    return 0


if __name__ == '__main__':
    run_tool(main)  # one-line user errors; --debug or OVSEG_DEBUG=1 shows the traceback
