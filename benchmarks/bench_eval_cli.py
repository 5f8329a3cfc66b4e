"""Whole-process panoptic evaluation: ``tools/analysis/eval_panoptic.py`` vs panopticapi's ``pq_compute``.

    python benchmarks/bench_eval_cli.py [--num-images 40] [--height 1024] [--width 2048] [--runs 2]
        [--workdir DIR] [--keep] [--json out.json]

Generates Cityscapes-size pairs with ``benchmarks/bench_pq.py``'s generator (19 categories, 30-60 GT
segments per image, VOID borders, crowd things), warms the file cache by reading every file once, then
times each tool as a fresh process from start to exit, ``--runs`` times each, alternating which goes first,
and reports the best run of each (both on all usable cores: our tool's ``--workers`` default, panopticapi's
own ``multiprocessing`` pool of ``cpu_count()`` workers). It also checks that both report the same PQ/SQ/RQ
(All/Things/Stuff and per class).
"""
from __future__ import annotations

import argparse
import json
import os
import os.path as osp
import resource
import shutil
import subprocess
import sys
import tempfile
import time

REPO = osp.abspath(osp.join(osp.dirname(__file__), '..'))
sys.path.insert(0, REPO)
sys.path.insert(0, osp.dirname(osp.abspath(__file__)))

from bench_pq import max_diff, write_dataset  # noqa: E402

# panopticapi's pq_compute as a process, writing its result dict so the two tools can be compared.
PAPI = ('import json, sys\n'
        'from panopticapi.evaluation import pq_compute\n'
        'res = pq_compute(*sys.argv[1:5])\n'
        'json.dump(res, open(sys.argv[5], "w"))\n')


def _warm(root: str) -> int:
    """Read every file once so both tools run on a warm page cache; returns the bytes read."""
    total = 0
    for dirpath, _, files in os.walk(root):
        for f in files:
            with open(osp.join(dirpath, f), 'rb') as fh:
                total += len(fh.read())
    return total


def _cpu_children() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)  # every waited-for descendant (pool workers too)
    return usage.ru_utime + usage.ru_stime


def _run(cmd: list[str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the process and its workers) of one run of ``cmd``."""
    cpu, t = _cpu_children(), time.perf_counter()
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    elapsed, cpu = time.perf_counter() - t, _cpu_children() - cpu
    if proc.returncode != 0:
        raise RuntimeError(f'{cmd[:3]} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}')
    return elapsed, cpu


def _time(cmd: list[str]) -> float:
    return _run(cmd)[0]


def _import_time(module: str, repeats: int = 5) -> float:
    """Best wall time of a fresh interpreter importing ``module``, minus a bare interpreter start."""
    def best(code: str) -> float:
        return min(_time([sys.executable, '-c', code]) for _ in range(repeats))
    return best(f'import {module}') - best('pass')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--num-images', type=int, default=40)
    parser.add_argument('--height', type=int, default=1024)
    parser.add_argument('--width', type=int, default=2048)
    parser.add_argument('--segments', type=int, nargs=2, default=[30, 60], help='GT segments per image range')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--runs', type=int, default=2, help='timed runs per tool (best is reported)')
    parser.add_argument('--workdir', default=None, help='where to write the PNGs (default: a temp dir)')
    parser.add_argument('--keep', action='store_true', help='keep the generated files')
    parser.add_argument('--json', default=None, help='write the timings here')
    args = parser.parse_args()

    root = args.workdir or tempfile.mkdtemp(prefix='bench_eval_cli_')
    os.makedirs(root, exist_ok=True)
    t0 = time.perf_counter()
    data = write_dataset(root, args)
    print(f'generated {args.num_images} pairs of {args.height}x{args.width} in {time.perf_counter() - t0:.1f} s; '
          f'{_warm(root) / 2**20:.0f} MiB read to warm the cache', flush=True)
    files = [data['gt_json'], data['pred_json'], data['gt_folder'], data['pred_folder']]
    ours_out, papi_out = osp.join(root, 'ours.json'), osp.join(root, 'papi.json')
    cmds = {
        'ovseg': [sys.executable, 'tools/analysis/eval_panoptic.py', '--gt-json', files[0], '--pred-json', files[1],
                  '--gt-folder', files[2], '--pred-folder', files[3], '--out', ours_out],
        'panopticapi': [sys.executable, '-c', PAPI, *files, papi_out],
    }
    times: dict[str, list[float]] = {k: [] for k in cmds}
    cpu: dict[str, list[float]] = {k: [] for k in cmds}
    for r in range(args.runs):
        for name in (('ovseg', 'panopticapi') if r % 2 == 0 else ('panopticapi', 'ovseg')):
            wall, used = _run(cmds[name])
            times[name].append(wall)
            cpu[name].append(used)
    best = {k: min(v) for k, v in times.items()}
    with open(ours_out) as f:
        ours = json.load(f)
    with open(papi_out) as f:
        papi = json.load(f)
    diff = max_diff(ours, papi)
    cores = len(os.sched_getaffinity(0))
    print(f'\n{args.num_images} pairs {args.height}x{args.width}, {cores} usable cores, whole processes, '
          f'best of {args.runs}:')
    for name in cmds:
        print(f"  {name:12s} {best[name]:6.2f} s   (runs: {', '.join(f'{t:.2f}' for t in times[name])}; CPU s: "
              f"{', '.join(f'{t:.2f}' for t in cpu[name])})")
    print(f"  speed-up     {best['panopticapi'] / best['ovseg']:.2f}x wall (best), "
          f"{min(cpu['panopticapi']) / min(cpu['ovseg']):.2f}x CPU time (least)")
    print(f"  PQ All: ovseg {100 * ours['All']['pq']:.4f}, panopticapi {100 * papi['All']['pq']:.4f}; "
          f'max |difference| over All/Things/Stuff/per-class pq, sq, rq: {diff:.1e}')
    imports = {m: _import_time(m) for m in ('ovseg.evaluation.functional', 'panopticapi.evaluation')}
    print('  import time (fresh interpreter, minus bare start): ' +
          ', '.join(f'{m} {1e3 * t:.0f} ms' for m, t in imports.items()))
    if diff > 1e-12:
        raise SystemExit(f'the two tools disagree: max |difference| {diff:.3e}')
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(dict(times_s=times, cpu_s=cpu, best_s=best, speedup=best['panopticapi'] / best['ovseg'],
                           max_diff=diff,
                           cores=cores, num_images=args.num_images, import_s=imports), f, indent=1)
    if not args.keep and args.workdir is None:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == '__main__':
    main()
