"""Run the DreamMask Novel Sample Synthesis pipeline from a config.

    python tools/nss/run.py configs/nss/toy.py [--work-dir D] [--stages cna layout render masks]
                            [--num-scenes N] [--cfg-options key=value ...] [--no-progress]

Stages run in pipeline order; each skips scenes that are already finished, so rerunning the same command
continues an interrupted run. See docs/nss.md.
"""
import argparse
import json
import os
import sys
import time

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

from mmengine.config import Config  # noqa: E402

from ovseg.cli import CfgOptionsAction, merge_cfg_options, run_tool  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description='DreamMask NSS pipeline')
    p.add_argument('config')
    p.add_argument('--work-dir', help='output folder (default: cfg.work_dir)')
    p.add_argument('--stages', nargs='+', choices=['cna', 'layout', 'render', 'masks', 'all'],
                   default=['all'])
    p.add_argument('--num-scenes', type=int, help='override cfg.num_scenes')
    p.add_argument('--no-progress', action='store_true', help='disable progress bars')
    p.add_argument('--cfg-options', nargs='+', action=CfgOptionsAction, help='override config keys, e.g. seed=1')
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    if not os.path.isfile(args.config):
        raise FileNotFoundError(f'config file not found: {args.config}')
    cfg = Config.fromfile(args.config)
    merge_cfg_options(cfg, args.cfg_options)
    if args.num_scenes is not None:
        cfg.num_scenes = args.num_scenes
    if args.no_progress:
        cfg.show_progress = False
    from projects.dreammask.dreammask.nss import STAGES, NSSPipeline
    stages = list(STAGES) if 'all' in args.stages else args.stages
    pipe = NSSPipeline(cfg, work_dir=args.work_dir)
    t0 = time.time()
    summaries = pipe.run(stages)
    for s, summ in summaries.items():
        print(f"[{s}] generated={summ['generated']} kept={summ['kept']} rejected={summ['rejected']} "
              f"skipped={summ['skipped_already_done']}")
    print(json.dumps({'work_dir': str(pipe.work_dir), 'seconds': round(time.time() - t0, 2)}))
    return 0


if __name__ == '__main__':
    run_tool(main)  # one-line user errors; --debug or OVSEG_DEBUG=1 shows the traceback
