"""NSS synthetic dataset: start-up and per-sample load time, ovseg (lazy) vs seed 000's up-front RLE encoding.

Seed 000's ``train_net_nss.py`` builds detectron2 dicts by reading every mask PNG and RLE-encoding it at
registration, before training starts; ``NSSSceneDataset`` parses the JSONs only and reads masks per sample.

    python benchmarks/bench_nss_dataset.py [--scenes 10000] [--objects 4] [--size 256] [--samples 200] [--sra-steps 20]

It also reports SRA's share of a DreamMask training step (via ``benchmarks/bench_sra.py``).
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image
from pycocotools import mask as mask_utils

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def make_scenes(root: Path, n: int, objects: int, size: int) -> None:
    (root / 'images').mkdir(parents=True)
    (root / 'masks').mkdir()
    rng = np.random.default_rng(0)
    img = Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8))
    for s in range(n):
        img.save(root / 'images' / f'real_{s:05d}.png', compress_level=1)
        objs = []
        for k in range(objects):
            x, y = (int(v) for v in rng.integers(0, size // 2, 2))
            w = h = size // 3
            m = np.zeros((size, size), np.uint8)
            m[y:y + h, x:x + w] = 255
            Image.fromarray(m).save(root / 'masks' / f'scene_{s:05d}_obj_{k:02d}.png', compress_level=1)
            objs.append(dict(index=k, name=f'class{k}', box=dict(x=x, y=y, w=w, h=h),
                             mask_path=f'masks/scene_{s:05d}_obj_{k:02d}.png', clip_score=0.3,
                             mask_uncertainty=0.1))
        (root / f'scene_{s:05d}.json').write_text(json.dumps(dict(
            scene_id=f'scene_{s:05d}', real_image=f'images/real_{s:05d}.png', canvas_width=size,
            canvas_height=size, objects=objs)))


def seed_style_register(root: Path) -> list:
    """What train_net_nss.py does at registration: open every image and RLE-encode every mask."""
    records = []
    for path in sorted(root.glob('scene_*.json')):
        rec = json.loads(path.read_text())
        with Image.open(root / rec['real_image']) as im:
            w, h = im.size
        anns = []
        for obj in rec['objects']:
            m = np.asarray(Image.open(root / obj['mask_path'])) > 0
            rle = mask_utils.encode(np.asfortranarray(m.astype(np.uint8)))
            rle['counts'] = rle['counts'].decode('utf-8')
            anns.append(dict(bbox=[obj['box'][k] for k in 'xywh'], segmentation=rle, category_id=0, iscrowd=0))
        records.append(dict(file_name=str(root / rec['real_image']), height=h, width=w, annotations=anns,
                            is_synthetic=True))
    return records


def seed_style_load(rec: dict) -> tuple:
    """Per sample in the seed's mapper: read the image, decode each RLE back to a mask."""
    img = np.asarray(Image.open(rec['file_name']).convert('RGB'))
    masks = [mask_utils.decode(a['segmentation']) for a in rec['annotations']]
    return img, masks


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--scenes', type=int, default=10000)
    p.add_argument('--objects', type=int, default=4)
    p.add_argument('--size', type=int, default=256)
    p.add_argument('--samples', type=int, default=200)
    p.add_argument('--sra-steps', type=int, default=20,
                   help="also time SRA's share of a training step (benchmarks/bench_sra.py); 0 skips it")
    args = p.parse_args(argv)
    from mmengine.logging import MMLogger
    from mmengine.registry import init_default_scope

    import projects.dreammask.dreammask  # noqa: F401
    from projects.dreammask.dreammask import NSSSceneDataset
    MMLogger.get_instance('bench', log_level='WARNING')
    init_default_scope('ovseg')
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / 'processed_dataset'
        t = time.perf_counter()
        make_scenes(root, args.scenes, args.objects, args.size)
        print(f'generated {args.scenes} scenes x {args.objects} objects ({args.size}^2) in '
              f'{time.perf_counter() - t:.1f} s')
        t = time.perf_counter()
        ds = NSSSceneDataset(str(root), pipeline=[dict(type='LoadImage'), dict(type='LoadNSSAnnotations')])
        ours_start = time.perf_counter() - t
        t = time.perf_counter()
        records = seed_style_register(root)
        seed_start = time.perf_counter() - t
        idx = np.random.default_rng(1).choice(len(ds), args.samples, replace=False)
        t = time.perf_counter()
        for i in idx:
            ds[int(i)]
        ours_sample = (time.perf_counter() - t) / args.samples
        t = time.perf_counter()
        for i in idx:
            seed_style_load(records[int(i)])
        seed_sample = (time.perf_counter() - t) / args.samples
    print('| | ovseg NSSSceneDataset (lazy) | seed 000 (RLE up front) | ratio |')
    print('|---|---|---|---|')
    print(f'| start-up, {args.scenes} scenes | {ours_start:.2f} s | {seed_start:.2f} s | '
          f'{seed_start / ours_start:.1f}x faster |')
    print(f'| per sample (image + {args.objects} masks) | {1e3 * ours_sample:.2f} ms | {1e3 * seed_sample:.2f} ms | '
          f'{ours_sample / seed_sample:.2f}x |')
    if args.sra_steps:
        sys.path.insert(0, str(ROOT / 'benchmarks'))
        import bench_sra
        print()
        r = bench_sra.main(['--steps', str(args.sra_steps)])
        print(f"SRA share of a training step: {100 * r['sra_forward'] / r['step_on']:.1f} % (SRA computation), "
              f"{100 * (r['step_on'] - r['step_off']) / r['step_on']:+.1f} % (whole-step difference); goal <= 3 %")
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
