"""Seeded random panoptic GT / prediction pairs exercising every panopticapi rule, written in its format."""
from __future__ import annotations

import json
import os
import os.path as osp

import numpy as np
from PIL import Image

# Dataset category ids (non-contiguous on purpose): 5 things then 4 stuff.
CATEGORY_IDS = [1, 3, 7, 10, 12, 20, 21, 33, 40]
IS_THING = [True] * 5 + [False] * 4
CLASSES = [f'c{c}' for c in CATEGORY_IDS]


def id2rgb(ids: np.ndarray) -> np.ndarray:
    ids = ids.astype(np.int64)
    return np.stack([ids % 256, ids // 256 % 256, ids // 65536 % 256], axis=-1).astype(np.uint8)


def _rects(rng, h, w, n):
    for _ in range(n):
        y0, x0 = rng.integers(0, h), rng.integers(0, w)
        yield slice(y0, y0 + rng.integers(2, h // 2 + 2)), slice(x0, x0 + rng.integers(2, w // 2 + 2))


def make_case(rng: np.random.Generator, h: int = 36, w: int = 48):
    """One image: GT id map + segments_info, prediction id map + segments_info (dataset category ids)."""
    # --- GT: blocks of segments, some VOID, crowd, unlisted ids, wrong/absent JSON areas.
    gt = np.zeros((h, w), np.int64)
    n_seg = int(rng.integers(4, 12))
    ids = rng.choice(np.arange(1, 1 << 24), size=n_seg + 3, replace=False)
    cats = rng.integers(0, len(CATEGORY_IDS), size=n_seg + 3)
    for k, sl in enumerate(_rects(rng, h, w, n_seg)):
        gt[sl] = ids[k]
    if rng.random() < 0.7:  # VOID strokes
        for sl in _rects(rng, h, w, 2):
            gt[sl[0], sl[1].start:sl[1].start + 3] = 0
    present = [int(i) for i in np.unique(gt) if i != 0]
    segs = []
    for sid in present:
        k = int(np.flatnonzero(ids == sid)[0])
        cat = int(cats[k])
        segs.append({
            'id': sid,
            'category_id': CATEGORY_IDS[cat],
            'iscrowd': int(IS_THING[cat] and rng.random() < 0.25),
            'area': int((gt == sid).sum()),
            'bbox': [0, 0, 1, 1]
        })
    # several crowd segments of one category (last one wins in panopticapi)
    thing_segs = [s for s in segs if s['category_id'] in CATEGORY_IDS[:5]]
    if len(thing_segs) >= 2 and rng.random() < 0.5:
        for s in thing_segs[:2]:
            s['iscrowd'] = 1
            s['category_id'] = thing_segs[0]['category_id']
    for s in segs:  # JSON area that differs from the PNG by a few pixels
        if rng.random() < 0.15:
            s['area'] = max(1, s['area'] + int(rng.integers(-3, 4)))
    if len(segs) > 2 and rng.random() < 0.5:  # a GT id in the PNG missing from the JSON (not VOID!)
        segs.pop(int(rng.integers(0, len(segs))))
    if rng.random() < 0.3:  # a JSON segment absent from the PNG: a false negative
        segs.append({
            'id': int(ids[-1]),
            'category_id': CATEGORY_IDS[int(cats[-1])],
            'iscrowd': 0,
            'area': 17,
            'bbox': [0, 0, 1, 1]
        })
    rng.shuffle(segs)

    # --- prediction: GT relabelled and perturbed.
    pred = np.zeros((h, w), np.int64)
    gt_cat = {s['id']: s['category_id'] for s in segs}
    pids = rng.choice(np.arange(1, 1 << 24), size=64, replace=False)
    pcat: dict[int, int] = {}
    j = 0
    for sid in np.unique(gt).tolist():
        if sid == 0 and rng.random() < 0.5:
            continue
        r = rng.random()
        if r < 0.1:
            continue  # missed segment
        pid = int(pids[j])
        j += 1
        m = gt == sid
        if rng.random() < 0.3:  # erode / shift a bit
            m = np.roll(m, int(rng.integers(-3, 4)), axis=int(rng.integers(0, 2)))
        pred[m] = pid
        cat = gt_cat.get(sid, CATEGORY_IDS[int(rng.integers(0, len(CATEGORY_IDS)))])
        if rng.random() < 0.15:  # category mismatch
            cat = CATEGORY_IDS[int(rng.integers(0, len(CATEGORY_IDS)))]
        pcat[pid] = cat
    for sl in _rects(rng, h, w, int(rng.integers(0, 3))):  # unmatched extra predictions
        pid = int(pids[j])
        j += 1
        pred[sl] = pid
        pcat[pid] = CATEGORY_IDS[int(rng.integers(0, len(CATEGORY_IDS)))]
    crowd = [s for s in segs if s['iscrowd']]
    if crowd and rng.random() < 0.7:  # a prediction mostly on a crowd region of its category
        c = crowd[int(rng.integers(0, len(crowd)))]
        ys, xs = np.nonzero(gt == c['id'])
        if len(ys):
            pid = int(pids[j])
            j += 1
            pred[ys[:max(1, len(ys) * 3 // 4)], xs[:max(1, len(ys) * 3 // 4)]] = pid
            pcat[pid] = c['category_id']
    if (gt == 0).any() and rng.random() < 0.6:  # a prediction mostly on VOID
        ys, xs = np.nonzero(gt == 0)
        pid = int(pids[j])
        j += 1
        pred[ys, xs] = pid
        pcat[pid] = CATEGORY_IDS[int(rng.integers(0, len(CATEGORY_IDS)))]
    if rng.random() < 0.5:  # VOID in the prediction
        for sl in _rects(rng, h, w, 1):
            pred[sl] = 0
    psegs = [{'id': int(p), 'category_id': pcat[int(p)], 'isthing': 1} for p in np.unique(pred) if p != 0]
    rng.shuffle(psegs)
    return gt, segs, pred, psegs


def make_dataset(seed: int = 0, num_images: int = 30, h: int = 36, w: int = 48):
    rng = np.random.default_rng(seed)
    return [make_case(rng, h, w) for _ in range(num_images)]


def write_panopticapi_format(root: str, cases) -> dict[str, str]:
    """Write GT/pred PNG folders and JSONs; return their paths."""
    paths = {
        'gt_json': osp.join(root, 'gt.json'),
        'pred_json': osp.join(root, 'pred.json'),
        'gt_folder': osp.join(root, 'gt'),
        'pred_folder': osp.join(root, 'pred')
    }
    os.makedirs(paths['gt_folder'], exist_ok=True)
    os.makedirs(paths['pred_folder'], exist_ok=True)
    cats = [{'id': c, 'name': n, 'isthing': int(t)} for c, n, t in zip(CATEGORY_IDS, CLASSES, IS_THING)]
    gt_anns, pred_anns, images = [], [], []
    for i, (gt, segs, pred, psegs) in enumerate(cases):
        name = f'img{i:04d}.png'
        Image.fromarray(id2rgb(gt)).save(osp.join(paths['gt_folder'], name))
        Image.fromarray(id2rgb(pred)).save(osp.join(paths['pred_folder'], name))
        images.append({
            'id': 100 + i,
            'file_name': f'img{i:04d}.jpg',
            'height': gt.shape[0],
            'width': gt.shape[1]
        })
        gt_anns.append({'image_id': 100 + i, 'file_name': name, 'segments_info': segs})
        pred_anns.append({'image_id': 100 + i, 'file_name': name, 'segments_info': psegs})
    with open(paths['gt_json'], 'w') as f:
        json.dump({'images': images, 'annotations': gt_anns, 'categories': cats}, f)
    with open(paths['pred_json'], 'w') as f:
        json.dump({'annotations': pred_anns}, f)
    return paths
