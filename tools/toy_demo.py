"""`make demo`: train a tiny FC-CLIP on ToyScenes on the CPU, evaluate it and draw predictions.

Steps (a few minutes on 2 cores):
  1. generate ToyScenes (procedural COCO-panoptic data, seconds) under ``data/toy_scenes``;
  2. train ``configs/fcclip/fcclip_tiny_toy-scenes.py`` with ``tools/train.py`` (subprocess);
  3. evaluate the final checkpoint on the toy val split (PQ / mIoU) with ``tools/test.py``;
  4. write panoptic overlays + segment JSON for a few val images with ``tools/image_demo.py``;
  5. print where everything is.

Options: ``--iters N`` (shorter/longer training), ``--work-dir``, ``--num-vis``, ``--skip-train`` (reuse the
checkpoint of an earlier run).
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import os.path as osp
import subprocess
import sys
import time

sys.path.insert(0, osp.abspath(osp.join(osp.dirname(__file__), '..')))

from mmengine.config import Config  # noqa: E402

from ovseg.cli import run_tool  # noqa: E402
from ovseg.datasets.toy_scenes import ensure_toy_scenes  # noqa: E402
from ovseg.engine.checkpoint_files import find_resume_checkpoint  # noqa: E402

REPO = osp.abspath(osp.join(osp.dirname(__file__), '..'))
CONFIG = osp.join(REPO, 'configs', 'fcclip', 'fcclip_tiny_toy-scenes.py')


def _run(cmd: list[str], log_path: str) -> None:
    """Run a tool, streaming a short progress view and keeping the full log."""
    env = dict(os.environ)
    env.setdefault('OMP_NUM_THREADS', str(os.cpu_count() or 2))
    env['PYTHONPATH'] = REPO + (os.pathsep + env['PYTHONPATH'] if env.get('PYTHONPATH') else '')
    with open(log_path, 'w') as log:
        proc = subprocess.Popen(cmd,
                                cwd=REPO,
                                env=env,
                                stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT,
                                text=True,
                                bufsize=1)
        for line in proc.stdout:
            log.write(line)
            if ('Iter(train)' in line or 'Iter(val)' in line and 'PQ' in line or 'Iter(test)' in line
                    or 'Error' in line or 'Traceback' in line or 'coco_panoptic' in line.lower()):
                text = line.strip()
                print('   ', text[text.find('Iter('):] if 'Iter(' in text else text, flush=True)
        rc = proc.wait()
    if rc != 0:
        with open(log_path) as f:
            tail = f.readlines()[-30:]
        sys.stderr.write(''.join(tail))
        raise SystemExit(f'command failed ({rc}): {" ".join(cmd)}; full log: {log_path}')


def _latest_metrics(work_dir: str) -> dict:
    """The newest mmengine metrics JSON (``<timestamp>/<timestamp>.json``) written by a test run."""
    files = sorted(glob.glob(osp.join(work_dir, '*', '*.json')), key=osp.getmtime)
    for path in reversed(files):
        try:
            with open(path) as f:
                lines = [json.loads(line) for line in f if line.strip()]
        except (json.JSONDecodeError, OSError):
            continue
        if lines and any(
                k.startswith(('coco_panoptic', 'pq', 'PQ', 'sem_seg', 'mIoU')) or '/' in k
                for k in lines[-1]):
            return dict(path=path, metrics=lines[-1])
    return dict(path=None, metrics={})


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--work-dir', default=osp.join(REPO, 'work_dirs', 'demo_fcclip_tiny'))
    p.add_argument('--iters', type=int, default=None, help='training iterations (default: the config)')
    p.add_argument('--num-vis', type=int, default=4, help='val images to draw')
    p.add_argument('--skip-train', action='store_true', help='reuse the checkpoint in --work-dir')
    p.add_argument('--config', default=CONFIG, help='toy config (default: the tiny FC-CLIP)')
    args = p.parse_args(argv)
    config = osp.abspath(args.config)

    start = time.time()
    work_dir = osp.abspath(args.work_dir)
    os.makedirs(work_dir, exist_ok=True)
    py = sys.executable

    print('[1/4] ToyScenes data', flush=True)
    cfg = Config.fromfile(config)
    data_root = osp.join(REPO, cfg.train_dataloader.dataset.data_root)
    gen = cfg.train_dataloader.dataset.get('generate', True)
    ensure_toy_scenes(data_root, **(gen if isinstance(gen, dict) else {}))
    print(f'    {data_root}', flush=True)

    ckpt = osp.join(work_dir, 'iter_{}.pth')
    if not args.skip_train:
        iters = args.iters or cfg.train_cfg.max_iters
        print(f'[2/4] training tiny FC-CLIP for {iters} iterations on CPU (log: {work_dir}/train.log)',
              flush=True)
        t0 = time.time()
        cmd = [py, 'tools/train.py', config, '--work-dir', work_dir]
        if args.iters:
            cmd += [
                '--cfg-options', f'train_cfg.max_iters={args.iters}', f'train_cfg.val_interval={args.iters}',
                f'default_hooks.checkpoint.interval={args.iters}'
            ]
        _run(cmd, osp.join(work_dir, 'train.log'))
        print(f'    trained in {time.time() - t0:.0f}s', flush=True)
    # the work dir's last_checkpoint (relative to the work dir), resolved as --resume resolves it
    ckpt = find_resume_checkpoint(work_dir)
    if ckpt is None:
        raise SystemExit(f'no checkpoint in {work_dir}; run without --skip-train')

    print(f'[3/4] evaluating {osp.basename(ckpt)} on the toy val split', flush=True)
    eval_dir = osp.join(work_dir, 'eval')
    _run([py, 'tools/test.py', config, ckpt, '--work-dir', eval_dir], osp.join(work_dir, 'test.log'))
    found = _latest_metrics(eval_dir)
    metrics_path = osp.join(work_dir, 'metrics.json')
    with open(metrics_path, 'w') as f:
        json.dump(found['metrics'], f, indent=1)

    print(f'[4/4] overlays for {args.num_vis} val images', flush=True)
    val_imgs = sorted(glob.glob(osp.join(data_root, 'images', 'val', '*.png')))[:args.num_vis]
    vis_dir = osp.join(work_dir, 'overlays')
    _run([py, 'tools/image_demo.py', *val_imgs, '--config', config, '--checkpoint', ckpt, '--out', vis_dir],
         osp.join(work_dir, 'demo.log'))

    m = found['metrics']

    def pick(*names):
        for n in names:
            for k, v in m.items():
                if k.split('/')[-1] == n:
                    return v
        return None

    def fmt(*names):
        v = pick(*names)
        return '-' if v is None else f'{float(v):.1f}'

    print('\n==== FC-CLIP tiny on ToyScenes (CPU, random-init CLIP) ====')
    print(f"PQ {fmt('PQ')}  SQ {fmt('SQ')}  RQ {fmt('RQ')}  PQ_th {fmt('PQ_th')}  PQ_st {fmt('PQ_st')}  "
          f"mIoU {fmt('mIoU')}")
    print(f'work dir      : {work_dir}')
    print(f'checkpoint    : {ckpt}')
    print(f'metrics JSON  : {metrics_path}')
    print(
        f'overlays      : {vis_dir} '
        f'({len(glob.glob(osp.join(vis_dir, "*_panoptic.png")))} panoptic PNGs + JSON)'
    )
    print(f'total time    : {time.time() - start:.0f}s')
    return 0


if __name__ == '__main__':
    run_tool(main)  # one-line user errors; --debug or OVSEG_DEBUG=1 shows the traceback
