"""Evidence on the CPU default: baseline vs +synthetic vs +synthetic+SRA on ToyScenes (star/water novel).

Trains the three toy configs for each seed with the same schedule, evaluates on the toy val split with
per-class metrics, and prints novel (star, water) and base PQ / IoU per run and mean ± std over the seeds.
The synthetic scenes are rendered in another style than the real ones (``toy_synthetic.py``, style ``'flat'``),
so there is a synthetic-real domain gap for SRA to act on:

    python benchmarks/toy_dreammask.py [--iters 600] [--seeds 0 1 2] [--work-dir work_dirs/toy_dreammask]

Each run's stdout/stderr goes to ``<work-dir>/seed<k>/<config>.log``; ``<work-dir>/results.json`` keeps every
number.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RUNS = {
    'baseline (real only)': 'configs/fcclip/fcclip_tiny_toy-scenes.py',
    '+ synthetic': 'configs/dreammask/dreammask-sra-off_fcclip-tiny_toy-scenes.py',
    '+ synthetic + SRA': 'configs/dreammask/dreammask_fcclip-tiny_toy-scenes.py',
}
NOVEL = ('star', 'water')
COLUMNS = ('PQ', 'mIoU', 'novel_PQ', 'base_PQ', 'novel_IoU', 'base_IoU')


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


def mean_std(values: list[float]) -> str:
    """``mean ± sample std`` (std over seeds, n − 1 in the denominator; ± 0 for one seed)."""
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f'{statistics.fmean(values):.1f} ± {sd:.1f}'


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--iters', type=int, default=600)
    p.add_argument('--work-dir', default='work_dirs/toy_dreammask')
    p.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    args = p.parse_args(argv)
    env = dict(os.environ, OMP_NUM_THREADS=os.environ.get('OMP_NUM_THREADS', '1'))
    table: dict[str, list[dict]] = {name: [] for name in RUNS}
    for seed in args.seeds:
        for name, cfg in RUNS.items():
            wd = Path(args.work_dir) / f'seed{seed}' / Path(cfg).stem
            wd.mkdir(parents=True, exist_ok=True)
            opts = [f'train_cfg.max_iters={args.iters}', f'train_cfg.val_interval={args.iters}',
                    f'randomness.seed={seed}', 'val_evaluator.0.classwise=True',
                    'val_evaluator.1.classwise=True', f'default_hooks.checkpoint.interval={args.iters}']
            with open(wd.with_suffix('.log'), 'w') as log:
                subprocess.run([sys.executable, str(ROOT / 'tools/train.py'), cfg, '--work-dir', str(wd),
                                '--cfg-options', *opts], cwd=ROOT, env=env, check=True, stdout=log,
                               stderr=subprocess.STDOUT)
            table[name].append(dict(seed=seed, **summarise(_final_metrics(wd))))
            print(f'seed {seed} {name}', json.dumps({k: round(v, 2) for k, v in table[name][-1].items()}),
                  flush=True)
    (Path(args.work_dir) / 'results.json').write_text(json.dumps(dict(iters=args.iters, runs=table), indent=1))
    seeds = ', '.join(map(str, args.seeds))
    print(f'\n| run ({args.iters} it, seeds {seeds}; mean ± std) | ' + ' | '.join(
        c.replace('_', ' ') for c in COLUMNS) + ' |')
    print('|---' * (len(COLUMNS) + 1) + '|')
    for name, rows in table.items():
        print(f'| {name} | ' + ' | '.join(mean_std([r[c] for r in rows]) for c in COLUMNS) + ' |')
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
