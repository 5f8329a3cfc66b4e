"""The DreamMask toy config under tools/dist_train.sh (2 CPU processes, gloo): trains, and resume keeps the bank."""
import os
import subprocess
import sys

import pytest
import torch

import ovseg.registry  # noqa: F401  (weights-only loading of mmengine checkpoints)
from tests.tools.test_dist_train import run_dist_train

CFG = 'configs/dreammask/dreammask_fcclip-tiny_toy-scenes.py'
SHORT = ['train_cfg.val_interval=100', 'default_hooks.checkpoint.interval=2',
         'default_hooks.checkpoint.max_keep_ckpts=5', 'default_hooks.logger.interval=1']


@pytest.mark.slow
def test_dist_train_with_sra_and_resume_keeps_bank(tmp_path, repo_root):
    out = run_dist_train(repo_root, CFG, tmp_path, extra=['--cfg-options', 'train_cfg.max_iters=2'] + SHORT)
    log = out.stdout + out.stderr
    assert out.returncode == 0, log[-4000:]
    assert 'loss_sra' in log and 'sra_bank_fill' in log
    bank2 = torch.load(tmp_path / 'iter_2.pth', map_location='cpu', weights_only=True)['state_dict']
    count2 = bank2['sra.memory.count']
    assert count2.sum() > 0  # real objects of both ranks were gathered into the bank
    assert count2[9:].sum() == 0  # novel classes (star, water) never appear in real images

    out = run_dist_train(repo_root, CFG, tmp_path,
                         extra=['--resume', '--cfg-options', 'train_cfg.max_iters=3'] + SHORT)
    log = out.stdout + out.stderr
    assert out.returncode == 0, log[-4000:]
    assert 'resumed epoch: 0, iter: 2' in log
    count3 = torch.load(tmp_path / 'iter_3.pth', map_location='cpu',
                        weights_only=True)['state_dict']['sra.memory.count']
    # one more iteration only adds to the restored queues; a fresh bank would hold a single batch
    assert bool((count3 >= count2).all()) and count3.sum() > count2.sum()


@pytest.mark.slow
def test_dist_train_without_sra(tmp_path, repo_root):
    """The λ = 0 ablation (real + synthetic, no alignment) runs under the same launcher."""
    cfg = 'configs/dreammask/dreammask-sra-off_fcclip-tiny_toy-scenes.py'
    out = run_dist_train(repo_root, cfg, tmp_path, extra=['--cfg-options', 'train_cfg.max_iters=2'] + SHORT)
    log = out.stdout + out.stderr
    assert out.returncode == 0, log[-4000:]
    assert 'GPU number: 2' in log and 'loss_sra' not in log
    state = torch.load(tmp_path / 'iter_2.pth', map_location='cpu', weights_only=True)['state_dict']
    assert state['sra.memory.count'].sum() == 0  # SRA skipped entirely: the bank stays empty


@pytest.mark.slow
def test_single_process_toy_run_logs_sra_and_fills_the_bank(tmp_path, repo_root):
    """tools/train.py, one process: a few iterations of the toy DreamMask config (real + synthetic, SRA on)."""
    env = dict(os.environ, OMP_NUM_THREADS='1', CUDA_VISIBLE_DEVICES='')
    out = subprocess.run([sys.executable, 'tools/train.py', CFG, '--work-dir', str(tmp_path), '--cfg-options',
                          'train_cfg.max_iters=4'] + SHORT, cwd=repo_root, env=env, capture_output=True, text=True,
                         timeout=300)
    log = out.stdout + out.stderr
    assert out.returncode == 0, log[-4000:]
    assert 'loss_sra' in log and 'sra_bank_fill' in log
    state = torch.load(tmp_path / 'iter_4.pth', map_location='cpu', weights_only=True)['state_dict']
    count, ptr = state['sra.memory.count'], state['sra.memory.ptr']
    assert 0 < count.sum() and bool((count <= 32).all()) and bool((ptr < 32).all())
    assert count[9:].sum() == 0  # star/water are withheld from the real images: no real prototype
