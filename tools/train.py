"""Train a model from an ovseg config (single process, or one process per device under torchrun)."""
from __future__ import annotations

import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.abspath(osp.join(osp.dirname(__file__), '..')))

from mmengine.config import Config  # noqa: E402

import ovseg.registry  # noqa: E402,F401  (allow-lists mmengine checkpoint types for weights-only loading)
from ovseg.cli import CfgOptionsAction, run_tool  # noqa: E402
from ovseg.utils.dist_env import setup_amp  # noqa: E402
from ovseg.utils.launch import add_repo_root_to_path, build_runner, finish_launch, load_config  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Train a segmentor')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='directory for logs and checkpoints')
    parser.add_argument('--resume', nargs='?', type=str, const='auto',
                        help='resume from PATH, or from the latest checkpoint in the work dir if no PATH')
    parser.add_argument('--amp', action='store_true', help='automatic mixed precision (GPU)')
    parser.add_argument('--cfg-options', nargs='+', action=CfgOptionsAction,
                        help='override config entries, e.g. train_cfg.max_iters=100 model.lambda_sra=0.2')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm'], default='none')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=None)
    return parser.parse_args(argv)


def build_cfg(args: argparse.Namespace) -> Config:
    """Config with CLI overrides applied, in mmdetection's order of priority."""
    cfg = load_config(args.config, args.cfg_options, args.work_dir)
    if args.amp:
        setup_amp(cfg)
    if args.resume == 'auto':
        cfg.resume = True
        cfg.load_from = None
    elif args.resume is not None:
        cfg.resume = True
        cfg.load_from = args.resume
    return cfg


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    add_repo_root_to_path()  # before the config is read: its custom_imports may name projects.*
    runner = build_runner(build_cfg(args), args.launcher, args.local_rank)
    runner.train()
    finish_launch()


if __name__ == '__main__':
    run_tool(main)  # user errors: one line; --debug / OVSEG_DEBUG=1 shows the traceback
