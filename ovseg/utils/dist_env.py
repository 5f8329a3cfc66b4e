"""Launch-time environment fixes so mmengine's Runner trains on CPU (gloo) as well as GPU (nccl).

mmengine 0.10.7's pytorch/slurm launchers call ``torch.cuda.set_device`` unconditionally and its default
DDP wrapper passes ``device_ids=[LOCAL_RANK]``; both fail on a machine without CUDA. On such machines we
initialise the gloo process group ourselves (mmengine then skips its own init) and wrap the model with
``device_ids=None``. The same holds for ``FlexibleRunner`` configs (``runner_type='OVSegFlexibleRunner'`` with
a ``strategy``): the pre-initialised group keeps its strategies from ``init_dist``; a ``DDPStrategy`` (also
the one FlexibleRunner picks when ``strategy`` is unset) gets ``device_ids=None``; ``OVSegFSDPStrategy`` sets
FSDP's ``device_id`` to the CPU itself.

Collective timeout: ``env_cfg.dist_cfg.timeout`` (seconds). On CPU/gloo ovseg defaults it to
``DEFAULT_GLOO_TIMEOUT_S`` (torch's own default is 30 min, during which a stopped rank freezes every other
one); on GPU/NCCL torch's default (10 min) applies unless the config sets it, and NCCL's watchdog aborts the
process when it expires.
"""
from __future__ import annotations

import os
import subprocess
import warnings
from datetime import timedelta

import torch
import torch.distributed as dist
from mmengine.config import Config

DEFAULT_GLOO_TIMEOUT_S = 600  # a checkpoint save or a rank-0 metric fits; a stopped rank is noticed in 10 min


def default_backend() -> str:
    """nccl when CUDA is usable, gloo otherwise."""
    return 'nccl' if torch.cuda.is_available() else 'gloo'


def _slurm_to_torch_env(port: str | None = None) -> None:
    """Translate SLURM variables to the env:// variables torch.distributed reads."""
    os.environ.setdefault('RANK', os.environ['SLURM_PROCID'])
    os.environ.setdefault('WORLD_SIZE', os.environ['SLURM_NTASKS'])
    os.environ.setdefault('LOCAL_RANK', os.environ.get('SLURM_LOCALID', '0'))
    if 'MASTER_ADDR' not in os.environ:
        nodes = os.environ['SLURM_NODELIST']
        first = subprocess.getoutput(f'scontrol show hostname {nodes} | head -n1')
        os.environ['MASTER_ADDR'] = first
    os.environ.setdefault('MASTER_PORT', port or '29500')


def prepare_launch(cfg: Config, launcher: str) -> Config:
    """Resolve ``dist_cfg.backend='auto'`` and, on CPU, start gloo and a CPU-friendly DDP wrapper."""
    cfg.launcher = launcher
    env_cfg = cfg.setdefault('env_cfg', {})
    dist_cfg = env_cfg.setdefault('dist_cfg', {})
    if dist_cfg.get('backend', 'auto') == 'auto':
        dist_cfg['backend'] = default_backend()
    timeout = dist_cfg.get('timeout')
    if timeout is None and dist_cfg['backend'] == 'gloo':
        dist_cfg['timeout'] = timeout = DEFAULT_GLOO_TIMEOUT_S
    if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0):
        raise ValueError(f'env_cfg.dist_cfg.timeout must be a positive number of seconds, got {timeout!r}')
    optim = cfg.get('optim_wrapper')
    if optim is not None and optim.get('type') == 'AmpOptimWrapper' and not torch.cuda.is_available():
        warnings.warn('AmpOptimWrapper needs CUDA; training in fp32 with OptimWrapper on this machine')
        optim.type = 'OptimWrapper'
        for key in ('loss_scale', 'dtype', 'use_fsdp'):
            optim.pop(key, None)
    if launcher == 'none' or torch.cuda.is_available():
        return cfg

    if launcher == 'slurm':
        _slurm_to_torch_env()
    elif launcher != 'pytorch':
        raise ValueError(f'launcher {launcher!r} is not supported on a machine without CUDA; '
                         "use 'pytorch' (torchrun) or 'slurm'")
    for key in ('RANK', 'WORLD_SIZE', 'MASTER_ADDR', 'MASTER_PORT'):
        if key not in os.environ:
            raise RuntimeError(f'--launcher {launcher} needs the environment variable {key}; '
                               'start the job with tools/dist_train.sh (torchrun)')
    dist_cfg['backend'] = 'gloo'
    dist_cfg['timeout'] = dist_cfg.get('timeout') or DEFAULT_GLOO_TIMEOUT_S
    if not dist.is_initialized():
        dist.init_process_group(backend='gloo', init_method='env://',
                                timeout=timedelta(seconds=dist_cfg['timeout']))
    wrapper = cfg.get('model_wrapper_cfg') or {}
    wrapper = dict(wrapper)
    wrapper.setdefault('type', 'MMDistributedDataParallel')
    wrapper['device_ids'] = None  # CPU modules: DDP must not pin a CUDA device
    wrapper.setdefault('broadcast_buffers', False)
    wrapper.setdefault('find_unused_parameters', cfg.get('find_unused_parameters', False))
    cfg.model_wrapper_cfg = wrapper
    _cpu_ddp_strategy(cfg)
    return cfg


def _cpu_ddp_strategy(cfg: Config) -> None:
    """FlexibleRunner configs on CPU: a DDP strategy must not pin ``device_ids=[LOCAL_RANK]`` (CUDA)."""
    if 'FlexibleRunner' not in str(cfg.get('runner_type', '')):
        return
    strategy = cfg.get('strategy')
    if strategy is None:  # FlexibleRunner's default under a launcher
        strategy = cfg.strategy = dict(type='DDPStrategy')
    if not isinstance(strategy, dict) or strategy.get('type') != 'DDPStrategy':
        return
    wrapper = dict(strategy.get('model_wrapper') or {})
    wrapper.setdefault('type', 'MMDistributedDataParallel')
    wrapper['device_ids'] = None
    wrapper.setdefault('broadcast_buffers', False)
    strategy['model_wrapper'] = wrapper


def setup_amp(cfg: Config) -> Config:
    """Turn on mixed precision: fp16 + dynamic loss scaling on GPU, bf16 autocast on CPU.

    mmengine's AmpOptimWrapper refuses to build without an accelerator, so on CPU we keep the plain
    OptimWrapper and record ``cfg.cpu_autocast_dtype`` for models that support CPU autocast.
    """
    optim = cfg.optim_wrapper
    if torch.cuda.is_available():
        if optim.get('type', 'OptimWrapper') not in ('OptimWrapper', 'AmpOptimWrapper'):
            raise ValueError(f'--amp needs OptimWrapper or AmpOptimWrapper, got {optim.type}')
        optim.type = 'AmpOptimWrapper'
        optim.setdefault('loss_scale', 'dynamic')
    else:
        warnings.warn('--amp: no CUDA device; mmengine AMP needs one, training stays in fp32 on CPU.')
    return cfg
