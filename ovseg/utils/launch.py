"""Shared argument handling for tools/train.py and tools/test.py (repo root on sys.path, cfg-options)."""
from __future__ import annotations

import logging
import os
import os.path as osp
import sys
from pathlib import Path

import torch.distributed as dist
from mmengine.config import Config
from mmengine.runner import FlexibleRunner, Runner

from ovseg.cli import merge_cfg_options
from ovseg.registry import RUNNERS  # ovseg's child registry: finds OVSegRunner as well as mmengine's Runner

from .dist_env import prepare_launch
from .torch_compat import allow_mmengine_checkpoints

REPO_ROOT = Path(__file__).resolve().parents[2]


def add_repo_root_to_path() -> None:
    """Let configs import `projects.*` through custom_imports from any working directory."""
    root = str(REPO_ROOT)
    if root not in sys.path:
        sys.path.insert(0, root)
    os.environ['PYTHONPATH'] = root + (os.pathsep + os.environ['PYTHONPATH'] if os.environ.get('PYTHONPATH') else '')


def set_local_rank_env(local_rank: int | None) -> None:
    """torch.distributed.launch passes --local-rank; torchrun sets LOCAL_RANK. Accept both."""
    if 'LOCAL_RANK' not in os.environ and local_rank is not None:
        os.environ['LOCAL_RANK'] = str(local_rank)


def load_config(config: str, cfg_options: dict | None = None, work_dir: str | None = None):
    """Config with ``--cfg-options`` merged and ``work_dir`` resolved (CLI > config > work_dirs/<name>)."""
    if not osp.isfile(config):
        raise FileNotFoundError(f'config file not found: {config}')
    cfg = Config.fromfile(config)
    merge_cfg_options(cfg, cfg_options)
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(config))[0])
    return cfg


def check_runner_for_strategy(cfg) -> None:
    """A ``strategy`` (FSDP, DeepSpeed...) needs a FlexibleRunner; mmengine's Runner would ignore it silently.

    ``configs/_base_/fsdp.py`` brings ``strategy`` but cannot set ``runner_type`` (``default_runtime.py`` does,
    and mmengine refuses a key set by two bases), so a config that forgot ``runner_type='OVSegFlexibleRunner'``
    is stopped here instead of training unsharded.
    """
    if cfg.get('strategy') is None:
        return
    runner_type = cfg.get('runner_type', 'Runner')
    runner_cls = RUNNERS.get(runner_type) if isinstance(runner_type, str) else runner_type
    if runner_cls is None or not issubclass(runner_cls, FlexibleRunner):
        raise ValueError(f"the config sets strategy={dict(cfg.strategy).get('type')!r}, which runner_type="
                         f"{runner_type!r} ignores: set runner_type = 'OVSegFlexibleRunner' (docs/fsdp.md)")


def build_runner(cfg, launcher: str, local_rank: int | None = None):
    """The common launch path of tools/train.py and tools/test.py: env fixes, then the config's runner
    (``runner_type``: OVSegRunner, or OVSegFlexibleRunner with a ``strategy``; mmengine's Runner without one)."""
    allow_mmengine_checkpoints()  # --resume / load_from read mmengine checkpoints weights-only
    add_repo_root_to_path()
    set_local_rank_env(local_rank)
    check_runner_for_strategy(cfg)
    prepare_launch(cfg, launcher)
    return Runner.from_cfg(cfg) if 'runner_type' not in cfg else RUNNERS.build(cfg)


def finish_launch() -> None:
    """Tear the process group down once every rank is done; a distributed process then exits here (status 0).

    mmengine leaves the group alive at exit; with gloo a rank that exits while the other still talks to it can
    abort ("terminate called without an active exception") after an otherwise successful run. Even with the group
    destroyed, about 1 run in 7 of the two-process CPU Sa2VA toy still aborted that way during interpreter
    finalisation (no Python frame left: a C++ static torn down with a live thread), after its checkpoint and
    metrics were written, and torchrun then reported the run as failed. So a distributed tool run leaves with
    ``os._exit(0)`` once logging and stdio are flushed: nothing is left to finalise (the runner closed its
    visualizer and wrote its checkpoints in ``after_run``).
    """
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)
