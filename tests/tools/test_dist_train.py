"""`bash tools/dist_train.sh CONFIG 2` on a machine without CUDA: two CPU processes over gloo.

The tiny FC-CLIP under torchrun with 2 gloo processes, killed and resumed, is in tests/engine/test_exact_resume.py.
"""
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
    assert "dist_cfg: {'backend': 'gloo', 'timeout': 600}" in log  # ovseg's CPU collective timeout
    assert 'GPU number: 2' in log  # mmengine reports the world size under this name
    assert "type='MMDistributedDataParallel'" in log
    ckpt = torch.load(tmp_path / 'iter_20.pth', map_location='cpu', weights_only=True)
    assert ckpt['meta']['iter'] == 20
