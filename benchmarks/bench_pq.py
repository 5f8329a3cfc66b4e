"""Panoptic quality speed: ovseg's evaluator vs panopticapi's ``pq_compute`` on the same image pairs.

    python benchmarks/bench_pq.py [--num-images 200] [--height 1024] [--width 2048] [--segments 30 60]
        [--workdir DIR] [--keep] [--json out.json]

Generates Cityscapes-like pairs (19 categories, 8 things with some crowd, VOID borders): GT maps are
Voronoi partitions (rendered at 1/4 size and upsampled); predictions jitter the seeds, merge / drop /
relabel some segments and add spurious ones. Everything runs in one process per side (panopticapi's pool
is forced to one worker, ours uses ``workers=1``; OpenCV is single-threaded), one run each, and reports:

(a) whole file-based evaluation (PNG decode + matching), with the PNG-decode floor for reference;
(b) matching core alone on pre-decoded id maps (panopticapi's ``pq_compute_single_core`` with its PNG
    loading replaced by the decoded arrays, vs ``pq_image_stats``);
(c) in-memory ``PanopticMetric`` (``process`` + ``evaluate``) vs detectron2's path: write each prediction
    as PNG (panopticapi ``id2rgb`` + PIL) then run ``pq_compute`` on the folders.

It also checks that all paths give the same All/Things/Stuff/per-class numbers and prints the largest
difference.
"""
from __future__ import annotations

import argparse
import contextlib
import copy
import io
import json
import os
import os.path as osp
import shutil
import sys
import tempfile
import time
from typing import Any

REPO = osp.abspath(osp.join(osp.dirname(__file__), '..'))
sys.path.insert(0, REPO)
os.environ.setdefault('OMP_NUM_THREADS', '1')

import cv2  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

# numpy + OpenCV only (no torch / mmengine), so ``--core-only`` also runs in a separate numpy<2 environment.
from ovseg.evaluation.functional import pq_compute, pq_image_stats  # noqa: E402
from ovseg.structures.panoptic_format import read_panoptic_png, write_panoptic_png  # noqa: E402

# Cityscapes label ids: 11 stuff then 8 things.
CATEGORY_IDS = [7, 8, 11, 12, 13, 17, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 31, 32, 33]
IS_THING = [False] * 11 + [True] * 8


# ------------------------------------------------------------------------------------------ data
def _voronoi(seeds: np.ndarray, h: int, w: int, void_band: float) -> tuple[np.ndarray, np.ndarray]:
    """Nearest-seed labels at (h, w) and a mask of pixels near a border (distance gap < void_band)."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    best = np.full((h, w), np.inf, np.float32)
    second = np.full((h, w), np.inf, np.float32)
    lab = np.zeros((h, w), np.int32)
    for k, (y, x) in enumerate(seeds):
        d = np.sqrt((yy - y)**2 + (xx - x)**2)
        closer = d < best
        np.copyto(second, np.where(closer, best, np.minimum(second, d)))
        np.copyto(best, d, where=closer)
        lab[closer] = k
    return lab, (second - best) < void_band


def make_pair(rng: np.random.Generator, h: int, w: int, n_range: tuple[int, int]):
    """One (gt ids, gt segments, pred ids, pred segments) pair with dataset category ids."""
    lh, lw = max(8, h // 4), max(8, w // 4)
    n = int(rng.integers(n_range[0], n_range[1] + 1))
    seeds = np.stack([rng.uniform(0, lh, n), rng.uniform(0, lw, n)], 1)
    cats = rng.integers(0, len(CATEGORY_IDS), n)
    lab, border = _voronoi(seeds, lh, lw, void_band=0.6)
    # GT: COCO-style large ids, VOID on borders, some crowd things, JSON area = pixel count.
    ids = rng.choice(np.arange(1, 1 << 24), size=n, replace=False)
    gt_low = np.where(border, 0, ids[lab])
    gt = cv2.resize(gt_low.astype(np.float64), (w, h), interpolation=cv2.INTER_NEAREST).astype(np.int64)
    present, counts = np.unique(gt, return_counts=True)
    area = dict(zip(present.tolist(), counts.tolist()))
    gt_segs = []
    for k in range(n):
        sid = int(ids[k])
        if sid not in area:
            continue
        c = int(cats[k])
        gt_segs.append({
            'id': sid,
            'category_id': CATEGORY_IDS[c],
            'area': area[sid],
            'bbox': [0, 0, 1, 1],
            'iscrowd': int(IS_THING[c] and rng.random() < 0.1)
        })
    # Prediction: jittered seeds (boundaries move), merges, drops, label flips, spurious segments.
    pseeds = seeds + rng.normal(0, 1.5, seeds.shape)
    extra = int(rng.integers(0, 6))
    pseeds = np.concatenate([pseeds, np.stack([rng.uniform(0, lh, extra), rng.uniform(0, lw, extra)], 1)])
    pcats = np.concatenate([cats, rng.integers(0, len(CATEGORY_IDS), extra)])
    flip = rng.random(len(pcats)) < 0.1
    pcats[flip] = rng.integers(0, len(CATEGORY_IDS), int(flip.sum()))
    plab, _ = _voronoi(pseeds, lh, lw, void_band=0.0)
    owner = np.arange(len(pseeds))
    for k in range(len(owner)):  # merge some segments into another of the same category
        if rng.random() < 0.08:
            same = np.flatnonzero(pcats == pcats[k])
            owner[k] = owner[same[0]]
    pid = owner + 1
    pid[rng.random(len(pid)) < 0.05] = 0  # dropped -> VOID
    pred_low = pid[plab]
    pred = cv2.resize(pred_low.astype(np.float64), (w, h), interpolation=cv2.INTER_NEAREST).astype(np.int64)
    pred_segs = [{
        'id': int(p),
        'category_id': CATEGORY_IDS[int(pcats[p - 1])],
        'isthing': 0
    } for p in np.unique(pred).tolist() if p != 0]
    return gt, gt_segs, pred, pred_segs


def write_dataset(root: str, args: argparse.Namespace) -> dict[str, Any]:
    rng = np.random.default_rng(args.seed)
    gt_dir, pred_dir = osp.join(root, 'gt'), osp.join(root, 'pred')
    os.makedirs(gt_dir, exist_ok=True)
    os.makedirs(pred_dir, exist_ok=True)
    gt_anns, pred_anns, images, nsegs = [], [], [], []
    for i in range(args.num_images):
        gt, gsegs, pred, psegs = make_pair(rng, args.height, args.width, tuple(args.segments))
        name = f'{i:05d}.png'
        write_panoptic_png(osp.join(gt_dir, name), gt)
        write_panoptic_png(osp.join(pred_dir, name), pred)
        images.append({'id': i, 'file_name': f'{i:05d}.jpg', 'height': args.height, 'width': args.width})
        gt_anns.append({'image_id': i, 'file_name': name, 'segments_info': gsegs})
        pred_anns.append({'image_id': i, 'file_name': name, 'segments_info': psegs})
        nsegs.append((len(gsegs), len(psegs)))
    cats = [{'id': c, 'name': str(c), 'isthing': int(t)} for c, t in zip(CATEGORY_IDS, IS_THING)]
    gt_json, pred_json = osp.join(root, 'gt.json'), osp.join(root, 'pred.json')
    with open(gt_json, 'w') as f:
        json.dump({'images': images, 'annotations': gt_anns, 'categories': cats}, f)
    with open(pred_json, 'w') as f:
        json.dump({'annotations': pred_anns}, f)
    return {
        'gt_json': gt_json,
        'pred_json': pred_json,
        'gt_folder': gt_dir,
        'pred_folder': pred_dir,
        'gt': {
            'annotations': gt_anns,
            'categories': cats
        },
        'pred': {
            'annotations': pred_anns
        },
        'segments': np.asarray(nsegs)
    }


# ------------------------------------------------------------------------------------------ panopticapi
def papi_pq_compute_one_process(gt_json: str, pred_json: str, gt_folder: str, pred_folder: str) -> dict:
    """panopticapi ``pq_compute`` with its pool forced to a single worker process; prints silenced."""
    from panopticapi import evaluation as papi
    saved = papi.multiprocessing.cpu_count
    papi.multiprocessing.cpu_count = lambda: 1
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            return papi.pq_compute(gt_json, pred_json, gt_folder, pred_folder)
    finally:
        papi.multiprocessing.cpu_count = saved


class _DecodedImages:
    """Stand-in for PIL.Image inside panopticapi: ``open(path)`` returns an already-decoded id map."""

    def __init__(self, maps: dict[str, np.ndarray]) -> None:
        self.maps = maps

    def open(self, path: str) -> np.ndarray:
        return self.maps[path]


def papi_core_on_arrays(gt_ann: dict, pred_ann: dict, gt_ids: np.ndarray, pred_ids: np.ndarray,
                        categories: dict) -> Any:
    """panopticapi's ``pq_compute_single_core`` on one pre-decoded pair (its image loading patched out)."""
    from panopticapi import evaluation as papi
    saved_image, saved_rgb2id = papi.Image, papi.rgb2id
    papi.Image = _DecodedImages({'G/' + gt_ann['file_name']: gt_ids, 'P/' + pred_ann['file_name']: pred_ids})
    papi.rgb2id = lambda x: x
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            return papi.pq_compute_single_core(0, [(gt_ann, pred_ann)], 'G', 'P', categories)
    finally:
        papi.Image, papi.rgb2id = saved_image, saved_rgb2id


# ------------------------------------------------------------------------------------------ comparison
def max_diff(a: dict, b: dict) -> float:
    d = 0.0
    for k in ('All', 'Things', 'Stuff'):
        assert a[k].get('n', b[k]['n']) == b[k]['n'], (k, a[k]['n'], b[k]['n'])
        d = max(d, *(abs(float(a[k][m]) - float(b[k][m])) for m in ('pq', 'sq', 'rq')))
    for c in b['per_class']:
        d = max(d,
                *(abs(float(a['per_class'][c][m]) - float(b['per_class'][c][m])) for m in ('pq', 'sq', 'rq')))
    return d


def metric_to_pq_dict(res: dict) -> dict:
    out = {}
    for key, suffix in (('All', ''), ('Things', '_th'), ('Stuff', '_st')):
        out[key] = {m: res[f'panoptic/{m.upper()}{suffix}'] / 100 for m in ('pq', 'sq', 'rq')}
    out['per_class'] = {
        cid: {
            m: res[f'panoptic/{m.upper()}-{cid}'] / 100
            for m in ('pq', 'sq', 'rq')
        }
        for cid in CATEGORY_IDS
    }
    return out


def core_only(args: argparse.Namespace) -> None:
    """(b) alone on generated in-memory pairs (uint32 maps as decoded from PNG), caches flushed per call."""
    rng = np.random.default_rng(args.seed)
    categories = {c: {'id': c, 'isthing': int(t)} for c, t in zip(CATEGORY_IDS, IS_THING)}
    cat_index = {c: k for k, c in enumerate(CATEGORY_IDS)}
    flush = np.ones(64 << 20, np.uint8)  # larger than the L3 cache: both sides start cold, like after decode
    t_papi = t_ours = 0.0
    for i in range(args.num_images):
        gt, gsegs, pred, psegs = make_pair(rng, args.height, args.width, tuple(args.segments))
        gt, pred = gt.astype(np.uint32), pred.astype(np.uint32)
        gt_ann = {'image_id': i, 'file_name': 'x.png', 'segments_info': gsegs}
        pred_ann = {'image_id': i, 'file_name': 'x.png', 'segments_info': psegs}
        for side in ((0, 1) if i % 2 == 0 else (1, 0)):
            flush.sum()
            if side == 0:
                a, b = copy.deepcopy(gt_ann), copy.deepcopy(pred_ann)
                t = time.perf_counter()
                papi_core_on_arrays(a, b, gt, pred, categories)
                t_papi += time.perf_counter() - t
            else:
                t = time.perf_counter()
                pq_image_stats(gt, gsegs, pred, psegs, cat_index, image_id=i)
                t_ours += time.perf_counter() - t
    n = args.num_images
    print(f'(b) matching core, {n} pairs {args.height}x{args.width}, numpy {np.__version__}: panopticapi '
          f'{1e3 * t_papi / n:.1f} ms/image, ovseg {1e3 * t_ours / n:.1f} ms/image, {t_papi / t_ours:.1f}x')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--num-images', type=int, default=200)
    parser.add_argument('--height', type=int, default=1024)
    parser.add_argument('--width', type=int, default=2048)
    parser.add_argument('--segments', type=int, nargs=2, default=[30, 60], help='GT segments per image range')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--workdir', default=None, help='where to write the PNGs (default: a temp dir)')
    parser.add_argument('--keep', action='store_true', help='keep the generated files')
    parser.add_argument('--json', default=None, help='write the timings here')
    parser.add_argument('--core-only', action='store_true',
                        help='only (b), on in-memory pairs; needs just numpy, OpenCV and panopticapi, so it can '
                        'run in another environment (e.g. numpy<2, which panopticapi-lite pins)')
    args = parser.parse_args()
    cv2.setNumThreads(1)
    if args.core_only:
        core_only(args)
        return
    import torch  # (c) only: the metric's inputs are tensors

    from ovseg.evaluation.metrics import PanopticMetric
    torch.set_num_threads(1)
    root = args.workdir or tempfile.mkdtemp(prefix='bench_pq_')
    os.makedirs(root, exist_ok=True)
    t0 = time.perf_counter()
    data = write_dataset(root, args)
    segs = data['segments']
    print(
        f'generated {args.num_images} pairs of {args.height}x{args.width} '
        f'in {time.perf_counter() - t0:.1f} s; '
        f'GT segments/image {segs[:, 0].mean():.1f} (min {segs[:, 0].min()}, max {segs[:, 0].max()}), '
        f'pred {segs[:, 1].mean():.1f}',
        flush=True)
    T: dict[str, float] = {}
    results: dict[str, dict] = {}

    # (a) whole file-based evaluation, + decode floors
    t = time.perf_counter()
    results['papi_files'] = papi_pq_compute_one_process(data['gt_json'], data['pred_json'], data['gt_folder'],
                                                        data['pred_folder'])
    T['a_papi'] = time.perf_counter() - t
    t = time.perf_counter()
    results['ours_files'] = pq_compute(data['gt_json'],
                                       data['pred_json'],
                                       data['gt_folder'],
                                       data['pred_folder'],
                                       workers=1)
    T['a_ours'] = time.perf_counter() - t
    names = [a['file_name'] for a in data['gt']['annotations']]
    t = time.perf_counter()
    for n in names:
        cv2.imread(osp.join(data['gt_folder'], n), cv2.IMREAD_UNCHANGED)
        cv2.imread(osp.join(data['pred_folder'], n), cv2.IMREAD_UNCHANGED)
    T['decode_cv2'] = time.perf_counter() - t
    t = time.perf_counter()
    for n in names:
        read_panoptic_png(osp.join(data['gt_folder'], n))
        read_panoptic_png(osp.join(data['pred_folder'], n))
    T['decode_ids_ours'] = time.perf_counter() - t
    from panopticapi.utils import rgb2id as papi_rgb2id
    t = time.perf_counter()
    for n in names:
        papi_rgb2id(np.array(Image.open(osp.join(data['gt_folder'], n)), dtype=np.uint32))
        papi_rgb2id(np.array(Image.open(osp.join(data['pred_folder'], n)), dtype=np.uint32))
    T['decode_ids_papi'] = time.perf_counter() - t
    print(f"(a) done: panopticapi {T['a_papi']:.1f} s, ours {T['a_ours']:.1f} s", flush=True)

    # (b) matching core on pre-decoded arrays, and (c) in-memory metric vs write PNG + pq_compute
    from panopticapi.evaluation import PQStat
    categories = {c['id']: c for c in data['gt']['categories']}
    cat_index = {c: k for k, c in enumerate(CATEGORY_IDS)}
    to_contig = {c: k for k, c in enumerate(CATEGORY_IDS)}
    papi_stat = PQStat()
    T['b_papi'] = T['b_ours'] = T['c_ours'] = T['c_d2_write'] = 0.0
    metric = PanopticMetric(classwise=True)
    metric.dataset_meta = {
        'classes': [str(c) for c in CATEGORY_IDS],
        'is_thing': IS_THING,
        'category_ids': CATEGORY_IDS
    }
    d2_dir = osp.join(root, 'd2_pred')
    os.makedirs(d2_dir, exist_ok=True)
    d2_anns = []
    for gt_ann, pred_ann in zip(data['gt']['annotations'], data['pred']['annotations']):
        gt = read_panoptic_png(osp.join(data['gt_folder'], gt_ann['file_name']))
        pred = read_panoptic_png(osp.join(data['pred_folder'], pred_ann['file_name']))
        gt_copy, pred_copy = copy.deepcopy(gt_ann), copy.deepcopy(pred_ann)  # panopticapi writes 'area' in
        for side in ((0, 1) if len(d2_anns) % 2 == 0 else (1, 0)):  # alternate who runs first (cache)
            t = time.perf_counter()
            if side == 0:
                papi_stat += papi_core_on_arrays(gt_copy, pred_copy, gt, pred, categories)
                T['b_papi'] += time.perf_counter() - t
            else:
                pq_image_stats(gt,
                               gt_ann['segments_info'],
                               pred,
                               pred_ann['segments_info'],
                               cat_index,
                               image_id=gt_ann['image_id'])
                T['b_ours'] += time.perf_counter() - t
        # (c) model outputs as they arrive in memory: int64 tensors, contiguous categories
        gt_t = torch.from_numpy(gt.astype(np.int64))[None]
        pred_t = torch.from_numpy(pred.astype(np.int64))[None]
        sample = {
            'img_id':
            gt_ann['image_id'],
            'gt_panoptic_seg': {
                'data': gt_t
            },
            'segments_info':
            [dict(s, category_id=to_contig[s['category_id']]) for s in gt_ann['segments_info']],
            'pred_panoptic_seg': {
                'data': pred_t
            },
            'pred_segments_info':
            [dict(s, category_id=to_contig[s['category_id']]) for s in pred_ann['segments_info']]
        }
        t = time.perf_counter()
        metric.process({}, [sample])
        T['c_ours'] += time.perf_counter() - t
        t = time.perf_counter()  # detectron2 COCOPanopticEvaluator.process: id2rgb + PIL PNG encode + write
        pan = pred_t[0].numpy()
        from panopticapi.utils import id2rgb
        with io.BytesIO() as out:
            Image.fromarray(id2rgb(pan)).save(out, format='PNG')
            png = out.getvalue()
        with open(osp.join(d2_dir, pred_ann['file_name']), 'wb') as f:
            f.write(png)
        d2_anns.append({
            'image_id': pred_ann['image_id'],
            'file_name': pred_ann['file_name'],
            'segments_info': pred_ann['segments_info']
        })
        T['c_d2_write'] += time.perf_counter() - t
    t = time.perf_counter()
    res_metric = metric.evaluate(len(names))
    T['c_ours'] += time.perf_counter() - t
    results['ours_metric'] = metric_to_pq_dict(res_metric)
    t = time.perf_counter()
    d2_json = osp.join(root, 'd2_pred.json')
    with open(d2_json, 'w') as f:
        json.dump({'annotations': d2_anns}, f)
    results['papi_d2'] = papi_pq_compute_one_process(data['gt_json'], d2_json, data['gt_folder'], d2_dir)
    T['c_d2_eval'] = time.perf_counter() - t
    T['c_d2'] = T['c_d2_write'] + T['c_d2_eval']
    papi_core = {}
    for name, flag in (('All', None), ('Things', True), ('Stuff', False)):
        papi_core[name], pc = papi_stat.pq_average(categories, isthing=flag)
        if name == 'All':
            papi_core['per_class'] = pc

    ref = results['papi_files']
    diffs = {k: max_diff(v, ref) for k, v in results.items()}
    diffs['papi_core_arrays'] = max_diff(papi_core, ref)
    n = len(names)
    rows = [
        ('(a) file-based pq_compute (decode + match)', T['a_papi'], T['a_ours']),
        ('(b) matching core, pre-decoded arrays', T['b_papi'], T['b_ours']),
        ('(c) in-memory metric vs PNG write + pq_compute', T['c_d2'], T['c_ours']),
    ]
    print(f'\n{n} image pairs {args.height}x{args.width}, one process each, numpy {np.__version__}, '
          f'python {sys.version.split()[0]}')
    print(f"{'path':50s} {'panopticapi':>12s} {'ovseg':>10s} {'speed-up':>9s}   per image (ms)")
    for label, a, b in rows:
        print(f'{label:50s} {a:10.2f} s {b:8.2f} s {a / b:8.1f}x   {1e3 * a / n:8.1f} -> {1e3 * b / n:6.1f}')
    print(f"PNG decode floor (cv2.imread of both PNGs): {T['decode_cv2']:.2f} s "
          f"({1e3 * T['decode_cv2'] / n:.1f} ms/image); ovseg decode+ids {T['decode_ids_ours']:.2f} s; "
          f"panopticapi PIL decode+rgb2id {T['decode_ids_papi']:.2f} s")
    print(f"(c) detectron2 path split: PNG encode+write {T['c_d2_write']:.2f} s, "
          f"pq_compute {T['c_d2_eval']:.2f} s")
    print('max |difference| vs panopticapi pq_compute (All/Things/Stuff/per-class): ' +
          ', '.join(f'{k} {v:.1e}' for k, v in diffs.items()))
    identical = all(v <= 1e-12 for v in diffs.values())
    print('numbers identical (<= 1e-12):', identical, '| file-based ovseg bit-identical to panopticapi:',
          diffs['ours_files'] == 0.0)
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(
                {
                    'times_s': T,
                    'max_diff': diffs,
                    'num_images': n,
                    'height': args.height,
                    'width': args.width,
                    'identical': identical
                },
                f,
                indent=1)
    if not args.keep and args.workdir is None:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == '__main__':
    main()
