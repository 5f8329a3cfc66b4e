"""Evaluate a checkpoint with an ovseg config; optionally dump predictions and visualisations."""
from __future__ import annotations

import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.abspath(osp.join(osp.dirname(__file__), '..')))

from mmengine.config import Config  # noqa: E402

import ovseg.registry  # noqa: E402,F401  (allow-lists mmengine checkpoint types for weights-only loading)
from ovseg.cli import CfgOptionsAction, run_tool  # noqa: E402
from ovseg.utils.launch import add_repo_root_to_path, build_runner, finish_launch, load_config  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Test (and evaluate) a segmentor')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', nargs='?', default=None,
                        help="checkpoint file; omit it only for models that load their members' checkpoints "
                             'themselves (e.g. the in-/out-of-vocabulary naive merge)')
    parser.add_argument('--work-dir', help='directory for the evaluation metrics')
    parser.add_argument('--out', help='dump the raw predictions to this pickle file')
    parser.add_argument('--show-dir', help='write prediction overlays into this directory (under work_dir)')
    parser.add_argument('--cfg-options', nargs='+', action=CfgOptionsAction, help='override config entries')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm'], default='none')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=None)
    return parser.parse_args(argv)


def build_cfg(args: argparse.Namespace) -> Config:
    cfg = load_config(args.config, args.cfg_options, args.work_dir)
    if args.checkpoint is not None:
        cfg.load_from = args.checkpoint
    elif not cfg.get('load_from'):
        print('tools/test.py: no checkpoint given and the config sets no load_from: the model is evaluated with the '
              'weights its constructor loads (member checkpoints) or with random weights', file=sys.stderr)
    if args.show_dir:
        cfg.custom_hooks = list(cfg.get('custom_hooks', [])) + [
            dict(type='SegVisualizationHook', draw=True, out_dir=args.show_dir)]
    return cfg


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    add_repo_root_to_path()  # before the config is read: its custom_imports may name projects.*
    runner = build_runner(build_cfg(args), args.launcher, args.local_rank)
    if args.out:
        from mmengine.evaluator import DumpResults
        runner.test_evaluator.metrics.append(DumpResults(out_file_path=args.out))
    runner.test()
    finish_launch()


if __name__ == '__main__':
    run_tool(main)  # user errors: one line; --debug / OVSEG_DEBUG=1 shows the traceback
