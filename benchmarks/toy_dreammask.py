"""Evidence on the CPU default: baseline vs +synthetic vs +synthetic+SRA on ToyScenes (star/water novel).

Trains the three toy configs with the same seed and schedule, evaluates on the toy val split with
per-class metrics, and prints novel (star, water) and base PQ / IoU for each:

    python benchmarks/toy_dreammask.py [--iters 800] [--work-dir work_dirs/toy_dreammask]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RUNS = {
    'baseline (real only)': 'configs/fcclip/fcclip_tiny_toy-scenes.py',
    '+ synthetic': 'configs/dreammask/dreammask_fcclip_tiny_toy-scenes_synthetic-no-sra.py',
    '+ synthetic + SRA': 'configs/dreammask/dreammask_fcclip_tiny_toy-scenes.py',
}
NOVEL = ('star', 'water')


def _final_metrics(work_dir: Path) -> dict:
    logs = sorted(work_dir.glob('*/vis_data/scalars.json'))
    if not logs:
        raise FileNotFoundError(f'no scalars.json under {work_dir}')
    records = [json.loads(line) for line in logs[-1].read_text().splitlines() if line.strip()]
    return [r for r in records if 'panoptic/PQ' in r][-1]


def summarise(metrics: dict) -> dict:
    def per_class(prefix: str) -> dict:
        return {k.split('-', 1)[1]: v for k, v in metrics.items() if k.startswith(prefix)}
    pq, iou = per_class('panoptic/PQ-'), per_class('sem_seg/IoU-')

    def mean(d, names):
        vals = [d[n] for n in names if n in d]
        return sum(vals) / len(vals) if vals else float('nan')
    base = [n for n in pq if n not in NOVEL]
    return dict(PQ=metrics['panoptic/PQ'], mIoU=metrics['sem_seg/mIoU'], novel_PQ=mean(pq, NOVEL),
                base_PQ=mean(pq, base), novel_IoU=mean(iou, NOVEL), base_IoU=mean(iou, base))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--iters', type=int, default=800)
    p.add_argument('--work-dir', default='work_dirs/toy_dreammask')
    p.add_argument('--seed', type=int, default=0)
    args = p.parse_args(argv)
    env = dict(os.environ, OMP_NUM_THREADS=os.environ.get('OMP_NUM_THREADS', '1'))
    table = {}
    for name, cfg in RUNS.items():
        wd = Path(args.work_dir) / Path(cfg).stem
        opts = [f'train_cfg.max_iters={args.iters}', f'train_cfg.val_interval={args.iters}',
                f'randomness.seed={args.seed}', 'val_evaluator.0.classwise=True', 'val_evaluator.1.classwise=True',
                f'default_hooks.checkpoint.interval={args.iters}']
        subprocess.run([sys.executable, str(ROOT / 'tools/train.py'), cfg, '--work-dir', str(wd),
                        '--cfg-options', *opts], cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL)
        table[name] = summarise(_final_metrics(wd))
        print(name, json.dumps({k: round(v, 2) for k, v in table[name].items()}), flush=True)
    print(f'\n| run ({args.iters} it, seed {args.seed}) | PQ | mIoU | novel PQ | base PQ | novel IoU | base IoU |')
    print('|---|---|---|---|---|---|---|')
    for name, r in table.items():
        print(f"| {name} | {r['PQ']:.1f} | {r['mIoU']:.1f} | {r['novel_PQ']:.1f} | {r['base_PQ']:.1f} | "
              f"{r['novel_IoU']:.1f} | {r['base_IoU']:.1f} |")
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
