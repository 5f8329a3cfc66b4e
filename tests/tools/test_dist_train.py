"""`bash tools/dist_train.sh CONFIG 2` on a machine without CUDA: two CPU processes over gloo."""
import os
import socket
import subprocess
import sys

import pytest
import torch

import ovseg.registry  # noqa: F401  (allow-lists mmengine checkpoint types for weights-only loading)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def run_dist_train(repo_root, config, work_dir, nproc=2, extra=()):
    env = dict(os.environ, PYTHON=sys.executable, PORT=str(_free_port()), OMP_NUM_THREADS='1',
               CUDA_VISIBLE_DEVICES='')
    cmd = ['bash', 'tools/dist_train.sh', str(config), str(nproc), '--work-dir', str(work_dir), *extra]
    return subprocess.run(cmd, cwd=repo_root, env=env, capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_dist_train_two_cpu_processes(tmp_path, repo_root):
    out = run_dist_train(repo_root, 'tests/helpers/toy_regression.py', tmp_path)
    log = out.stdout + out.stderr
    assert out.returncode == 0, log[-4000:]
    assert 'Distributed launcher: pytorch' in log
    assert 'Distributed training: True' in log
    assert "dist_cfg: {'backend': 'gloo'}" in log
    assert 'GPU number: 2' in log  # mmengine reports the world size under this name
    assert "type='MMDistributedDataParallel'" in log
    ckpt = torch.load(tmp_path / 'iter_20.pth', map_location='cpu', weights_only=True)
    assert ckpt['meta']['iter'] == 20


@pytest.mark.slow
def test_dist_train_tiny_fcclip_two_cpu_processes_and_resume(tmp_path, repo_root):
    """The issue's acceptance run: the tiny FC-CLIP toy config under torchrun with 2 gloo processes."""
    cfg = 'configs/fcclip/fcclip_tiny_toy-scenes.py'
    short = ['--cfg-options', 'train_cfg.max_iters=6', 'train_cfg.val_interval=6',
             'default_hooks.checkpoint.interval=3', 'default_hooks.checkpoint.max_keep_ckpts=3',
             'default_hooks.logger.interval=1',
             'val_dataloader.batch_size=16']
    out = run_dist_train(repo_root, cfg, tmp_path, extra=short)
    log = out.stdout + out.stderr
    assert out.returncode == 0, log[-4000:]
    assert 'GPU number: 2' in log and "dist_cfg: {'backend': 'gloo'}" in log
    assert 'panoptic/PQ' in log  # validation ran (both ranks' results gathered)
    assert (tmp_path / 'iter_6.pth').is_file()
    # resume from iter 3 and finish again: the resumed run starts at 3, not 0
    (tmp_path / 'last_checkpoint').write_text(str(tmp_path / 'iter_3.pth'))
    out = run_dist_train(repo_root, cfg, tmp_path, extra=['--resume'] + short)
    log = out.stdout + out.stderr
    assert out.returncode == 0, log[-4000:]
    assert 'resumed epoch: 0, iter: 3' in log
    assert 'Resumed data stream at iteration 3' in log
