"""Run the whole in-/out-of-vocabulary study on ToyScenes on a CPU, every approach from its config, and tabulate.

Steps (each skipped when its output exists, so an interrupted study resumes):

1. pretrain the tiny FC-CLIP on a full ToyScenes draw (seed 1) → ``<root>/zero_shot.pth`` (the "COCO checkpoint");
2. zero-shot: test it on the target toy val split;
3. upper bound (configuration 0) and lower bound (configuration 6): fine-tune, test;
4. FTZS: pseudo-label configuration 6 with the zero-shot model, fine-tune on it, test;
5. naive merge: test (lower-bound + zero-shot models);
6. knowledge distillation: fine-tune, test;
7. two-model training, five fusions: train, test;
8. ``tools/analysis/inout_table.py`` over every run → ``<root>/table/inout_table.{md,csv,png}``.

    python tools/inout_vocab/toy_study.py [--root work_dirs/inout_vocab_toy] [--only zero-shot lower-bound ...]
"""
from __future__ import annotations

import argparse
import os
import os.path as osp
import shutil
import subprocess
import sys
import time

REPO = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))
CFG = osp.join('configs', 'inout_vocab')

#: (run name, config, kind) in dependency order; 'train' runs are tested after training.
RUNS: tuple[tuple[str, str, str], ...] = (
    ('zero-shot', 'zero-shot_fcclip-tiny_toy-inout.py', 'test'),
    ('upper-bound', 'upper-bound_fcclip-tiny_toy-inout-0.py', 'train'),
    ('lower-bound', 'lower-bound_fcclip-tiny_toy-inout-6.py', 'train'),
    ('ftzs', 'ftzs_fcclip-tiny_toy-inout-ftzs-6.py', 'train'),
    ('naive', 'naive_fcclip-tiny_toy-inout-6.py', 'test'),
    ('kd', 'kd_fcclip-tiny_toy-inout-6.py', 'train'),
    ('fusion-mean', 'fusion-mean_fcclip-tiny_toy-inout-ftzs-6.py', 'train'),
    ('fusion-weighted', 'fusion-weighted_fcclip-tiny_toy-inout-ftzs-6.py', 'train'),
    ('fusion-threshold', 'fusion-threshold_fcclip-tiny_toy-inout-ftzs-6.py', 'train'),
    ('fusion-top10', 'fusion-top10_fcclip-tiny_toy-inout-ftzs-6.py', 'train'),
    ('fusion-entropy', 'fusion-entropy_fcclip-tiny_toy-inout-ftzs-6.py', 'train'),
)


def _run(cmd: list[str], log: str) -> None:
    start = time.perf_counter()
    print(f'$ {" ".join(cmd)}  (log: {log})', flush=True)
    os.makedirs(osp.dirname(log), exist_ok=True)
    with open(log, 'w', encoding='utf-8') as fh:
        code = subprocess.call(cmd, cwd=REPO, stdout=fh, stderr=subprocess.STDOUT)
    if code:
        raise SystemExit(f'failed ({code}) after {time.perf_counter() - start:.0f}s: see {log}')
    print(f'  done in {time.perf_counter() - start:.0f}s', flush=True)


def _pseudo_label(py: str, root: str, zero_shot: str, out: str) -> None:
    """FTZS pseudo-labels of toy configuration 6 by the zero-shot model (precision against the full JSON)."""
    from projects.inout_vocab.inout_vocab.toy_label_configs import write_toy_label_config
    data = 'data/toy_scenes_inout'
    rel = write_toy_label_config(data, 6)
    _run([py, 'tools/inout_vocab/ftzs_pseudo_labels.py', osp.join(CFG, 'zero-shot_fcclip-tiny_toy-inout.py'),
          zero_shot, '--panoptic-json', osp.join(data, rel), '--out', out, '--data-root', data,
          '--img-prefix', 'images/train', '--seg-prefix', 'panoptic_train',
          '--vocabulary', osp.join(data, 'toy_scenes_train.txt'),
          '--reference-json', osp.join(data, 'panoptic_train.json')], osp.join(root, 'logs', 'ftzs_pseudo_labels.log'))


def _has_test_metrics(work_dir: str) -> bool:
    return osp.isdir(work_dir) and any(
        osp.isfile(osp.join(work_dir, d, f'{d}.json')) for d in os.listdir(work_dir))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--root', default='work_dirs/inout_vocab_toy',
                        help='study folder (the toy configs expect the default)')
    parser.add_argument('--only', nargs='+', choices=[r[0] for r in RUNS], help='run these approaches only')
    args = parser.parse_args(argv)
    py = sys.executable
    root = args.root
    zero_shot = osp.join(root, 'zero_shot.pth')
    if not osp.isfile(zero_shot):
        pre = osp.join(root, 'pretrain')
        _run([py, 'tools/train.py', osp.join(CFG, 'pretrain_fcclip-tiny_toy-scenes-full.py'), '--work-dir', pre],
             osp.join(root, 'logs', 'pretrain.log'))
        shutil.copyfile(osp.join(pre, 'iter_800.pth'), zero_shot)
    ftzs_json = osp.join('data/toy_scenes_inout', 'inout', 'panoptic_train_ftzs_006.json')  # the configs' ann_file
    wanted = set(args.only or [r[0] for r in RUNS])
    for name, config, kind in RUNS:
        if name not in wanted:
            continue
        work = osp.join(root, name)
        cfg = osp.join(CFG, config)
        if (name == 'ftzs' or name.startswith('fusion')) and not osp.isfile(ftzs_json):
            _pseudo_label(py, root, zero_shot, ftzs_json)
        if kind == 'train' and not osp.isfile(osp.join(work, 'iter_200.pth')):
            _run([py, 'tools/train.py', cfg, '--work-dir', work], osp.join(root, 'logs', f'{name}_train.log'))
        if not _has_test_metrics(work):
            ckpt = [osp.join(work, 'iter_200.pth')] if kind == 'train' else []
            _run([py, 'tools/test.py', cfg, *ckpt, '--work-dir', work], osp.join(root, 'logs', f'{name}_test.log'))
    names = [r[0] for r in RUNS if osp.isdir(osp.join(root, r[0]))]
    _run([py, 'tools/analysis/inout_table.py', *[osp.join(root, n) for n in names], '--names', *names,
          '--out-dir', osp.join(root, 'table'), '--baseline', 'zero-shot'], osp.join(root, 'logs', 'table.log'))
    with open(osp.join(root, 'table', 'inout_table.md'), encoding='utf-8') as fh:
        print(fh.read())


if __name__ == '__main__':
    sys.path.insert(0, REPO)
    main()
