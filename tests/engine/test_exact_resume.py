"""Killed-and-resumed training equals uninterrupted training, bit for bit (issue 9, item 2).

The real tiny FC-CLIP and DreamMask toy configs with their augmentations (flip, LSJ scale + crop in
dataloader workers) and the model's random point sampling, on 1 process (tools/train.py) and 2 gloo CPU
processes (tools/dist_train.sh). Runs are cut to a few iterations of batch 2.
"""
from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest
import torch

import ovseg.registry  # noqa: F401  (weights-only allow-list)

CONFIGS = {
    'fcclip': 'configs/fcclip/fcclip_tiny_toy-scenes.py',
    'dreammask': 'configs/dreammask/dreammask_fcclip-tiny_toy-scenes.py',
}
COMMON = ['train_cfg.max_iters=4', 'default_hooks.checkpoint.interval=2',
          'default_hooks.checkpoint.max_keep_ckpts=3', 'default_hooks.logger.interval=1',
          'train_dataloader.batch_size=2',
          # validation at iteration 2 on 4 images: it must not shift the training random streams
          'train_cfg.val_interval=2', 'val_dataloader.batch_size=4', 'val_dataloader.dataset.indices=4']
EXTRA = {'fcclip': [],
         'dreammask': ['train_dataloader.sampler.batch_size=2', 'train_dataloader.sampler.num_synthetic=1']}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _wrapper(tmp_path, repo_root, name: str, kill_iter: int) -> str:
    """The config plus a hook that SIGKILLs rank 0 after ``kill_iter`` iterations."""
    base = repo_root / CONFIGS[name]
    imports = ['projects.dreammask.dreammask'] if name == 'dreammask' else []
    path = tmp_path / f'{name}_killed.py'
    path.write_text(f"_base_ = ['{base}']\n"
                    f"custom_imports = dict(imports={imports + ['tests.helpers.toy_modules']!r}, "
                    'allow_failed_imports=False)\n'
                    "custom_hooks = [dict(type='VocabularyHook'), "
                    f"dict(type='KillAtIterHook', kill_iter={kill_iter}, rank=0)]\n")
    return str(path)


def _train(repo_root, config, work_dir, nproc, extra=()):
    env = dict(os.environ, PYTHONPATH=str(repo_root), OMP_NUM_THREADS='1', CUDA_VISIBLE_DEVICES='')
    args = ['--work-dir', str(work_dir), *extra]
    if nproc == 1:
        cmd = [sys.executable, 'tools/train.py', str(config), *args]
    else:
        env.update(PYTHON=sys.executable, PORT=str(_free_port()))
        cmd = ['bash', 'tools/dist_train.sh', str(config), str(nproc), *args]
    return subprocess.run(cmd, cwd=repo_root, env=env, capture_output=True, text=True, timeout=900)


def _assert_same(a_path, b_path):
    a = torch.load(a_path, map_location='cpu', weights_only=True)
    b = torch.load(b_path, map_location='cpu', weights_only=True)
    assert a['meta']['iter'] == b['meta']['iter']
    diffs = [k for k in a['state_dict'] if not torch.equal(a['state_dict'][k], b['state_dict'][k])]
    assert not diffs, f'{len(diffs)} tensors differ after resume, e.g. {diffs[:3]}'
    for pa, pb in zip(a['optimizer']['state'].values(), b['optimizer']['state'].values()):
        for key in pa:
            assert torch.equal(pa[key], pb[key]), f'optimizer state {key} differs'


@pytest.mark.slow
@pytest.mark.parametrize('nproc', [1, 2])
@pytest.mark.parametrize('name', ['fcclip', 'dreammask'])
def test_killed_and_resumed_equals_uninterrupted(tmp_path, repo_root, name, nproc):
    opts = ['--cfg-options', *COMMON, *EXTRA[name]]
    full = _train(repo_root, CONFIGS[name], tmp_path / 'full', nproc, opts)
    assert full.returncode == 0, (full.stdout + full.stderr)[-4000:]
    assert 'panoptic/PQ' in full.stdout + full.stderr  # the validation at iteration 2 ran (ranks gathered)
    if nproc == 2:
        assert 'GPU number: 2' in full.stdout + full.stderr  # mmengine's name for the world size

    killed = _train(repo_root, _wrapper(tmp_path, repo_root, name, kill_iter=3), tmp_path / 'part', nproc, opts)
    assert killed.returncode != 0 and (tmp_path / 'part' / 'iter_2.pth').is_file()
    assert not (tmp_path / 'part' / 'iter_4.pth').exists()
    resumed = _train(repo_root, CONFIGS[name], tmp_path / 'part', nproc, ['--resume', *opts])
    log = resumed.stdout + resumed.stderr
    assert resumed.returncode == 0, log[-4000:]
    _assert_same(tmp_path / 'full' / 'iter_4.pth', tmp_path / 'part' / 'iter_4.pth')
    assert 'resumed epoch: 0, iter: 2' in log and 'Restored the random streams' in log
    assert 'Resumed data stream at iteration 2 without re-loading samples' in log
    if nproc == 2:  # both ranks' streams were saved and each rank restored its own
        states = torch.load(tmp_path / 'part' / 'iter_2.pth', map_location='cpu',
                            weights_only=True)['meta']['random_states']
        assert len(states) == 2 and not torch.equal(states[0]['torch'], states[1]['torch'])
