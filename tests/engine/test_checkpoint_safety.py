"""Checkpoints survive crashes and mistakes: atomic writes, relative last_checkpoint, work-dir lock, strict
resume (issue 9, items 1, 3 and 4)."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest
import torch
from mmengine.config import Config

import ovseg.registry  # noqa: F401  (allow-list + weights-only loaders)
from ovseg.engine.checkpoint_files import ResumeCheckpointError
from ovseg.engine.work_dir_lock import WorkDirBusyError
from ovseg.registry import RUNNERS
from ovseg.utils.checkpoint_io import CheckpointFormatError, load_checkpoint_file

CFG = 'tests/helpers/toy_regression.py'


def _cfg(repo_root, work_dir, max_iters=10, interval=5, keep=1, **extra):
    cfg = Config.fromfile(str(repo_root / CFG))
    cfg.work_dir = str(work_dir)
    cfg.train_cfg.max_iters = max_iters
    cfg.train_cfg.val_interval = 1000
    cfg.default_hooks.checkpoint.interval = interval
    cfg.default_hooks.checkpoint.max_keep_ckpts = keep
    cfg.experiment_name = f'run_{id(cfg)}'
    cfg.merge_from_dict(extra)
    return cfg


def _train(cfg):
    runner = RUNNERS.build(cfg)
    runner.train()
    return runner


def _log_text(work_dir) -> str:
    return '\n'.join(p.read_text() for p in sorted(work_dir.glob('*/*.log')))


@pytest.mark.slow
def test_kill_while_writing_keeps_the_previous_checkpoint(tmp_path, repo_root):
    """SIGKILL half-way through writing iter_10.pth (max_keep_ckpts=1): iter_5.pth stays, resume works."""
    work = tmp_path / 'w'
    crashing = tmp_path / 'crashing.py'
    crashing.write_text(f"_base_ = ['{repo_root / CFG}']\n"
                        "custom_hooks = [dict(type='KillDuringSaveHook', save_index=2)]\n")
    opts = ['--cfg-options', 'train_cfg.max_iters=10', 'train_cfg.val_interval=1000',
            'default_hooks.checkpoint.interval=5', 'default_hooks.checkpoint.max_keep_ckpts=1']
    env = dict(os.environ, PYTHONPATH=str(repo_root))
    out = subprocess.run([sys.executable, 'tools/train.py', str(crashing), '--work-dir', str(work)] + opts,
                         cwd=repo_root, env=env, capture_output=True, text=True)
    assert out.returncode == -9, out.stderr[-2000:]  # it really died in the middle of the write
    assert not (work / 'iter_10.pth').exists()
    assert load_checkpoint_file(work / 'iter_5.pth')['meta']['iter'] == 5
    assert (work / 'last_checkpoint').read_text() == 'iter_5.pth'  # relative to the work dir
    runner = _train(_cfg(repo_root, work, resume=True))
    assert runner.iter == 10
    assert sorted(p.name for p in work.glob('*.pth')) == ['iter_10.pth']  # the leftover partial is gone
    assert not [p for p in work.iterdir() if p.name.endswith('.partial')]


def test_old_checkpoints_are_deleted_only_after_the_new_one_is_complete(tmp_path, repo_root, monkeypatch):
    work = tmp_path / 'w'
    runner = RUNNERS.build(_cfg(repo_root, work))
    seen = []
    original = runner.save_checkpoint

    def spy(out_dir, filename, *args, **kwargs):
        seen.append(sorted(p.name for p in work.glob('iter_*.pth')))
        return original(out_dir, filename, *args, **kwargs)

    monkeypatch.setattr(runner, 'save_checkpoint', spy)
    runner.train()
    assert seen == [[], ['iter_5.pth']]  # iter_5 still existed while iter_10 was written
    assert sorted(p.name for p in work.glob('iter_*.pth')) == ['iter_10.pth']


def test_copied_work_dir_resumes_from_its_own_files(tmp_path, repo_root):
    _train(_cfg(repo_root, tmp_path / 'a', max_iters=5, keep=2))
    shutil.copytree(tmp_path / 'a', tmp_path / 'b')
    shutil.rmtree(tmp_path / 'a')
    runner = _train(_cfg(repo_root, tmp_path / 'b', resume=True))
    assert runner.iter == 10


def test_second_run_on_the_same_work_dir_is_refused(tmp_path, repo_root):
    first = RUNNERS.build(_cfg(repo_root, tmp_path / 'w'))
    with pytest.raises(WorkDirBusyError, match=rf'in use by another run \(pid {os.getpid()}'):
        RUNNERS.build(_cfg(repo_root, tmp_path / 'w'))
    first.train()  # releases the work dir when done
    assert _train(_cfg(repo_root, tmp_path / 'w', resume=True)).iter == 10


def test_resume_without_checkpoint_says_so_loudly(tmp_path, repo_root):
    runner = _train(_cfg(repo_root, tmp_path / 'w', max_iters=2, resume=True))
    assert runner.iter == 2
    assert 'NO CHECKPOINT in' in _log_text(tmp_path / 'w') and 'FROM SCRATCH' in _log_text(tmp_path / 'w')


def test_resume_from_a_missing_file_fails_before_training(tmp_path, repo_root):
    runner = RUNNERS.build(_cfg(repo_root, tmp_path / 'w', resume=True, load_from=str(tmp_path / 'typo.pth')))
    with pytest.raises(FileNotFoundError, match='typo.pth: no such checkpoint'):
        runner.train()
    assert runner.iter == 0


@pytest.mark.parametrize('content', [b'', b'\x00\x9f\xff garbage', b'/nowhere/iter_99.pth'],
                         ids=['empty', 'corrupt', 'dangling'])
def test_broken_last_checkpoint_lists_the_checkpoints(tmp_path, repo_root, content):
    work = tmp_path / 'w'
    _train(_cfg(repo_root, work, max_iters=5, keep=2))
    (work / 'last_checkpoint').write_bytes(content)
    runner = RUNNERS.build(_cfg(repo_root, work, resume=True))
    with pytest.raises(ResumeCheckpointError, match=r"last_checkpoint .*\['iter_5.pth'\]"):
        runner.train()


def test_checkpoint_of_another_model_is_refused_before_training(tmp_path, repo_root):
    _train(_cfg(repo_root, tmp_path / 'a', max_iters=5))
    other = _cfg(repo_root, tmp_path / 'b', resume=True, load_from=str(tmp_path / 'a' / 'iter_5.pth'))
    other.model.dim = 3  # another config: Linear(3, 1) instead of Linear(4, 1)
    other.train_dataloader.dataset.dim = 3
    runner = RUNNERS.build(other)
    with pytest.raises(CheckpointFormatError, match=r'written for another model.*linear.weight: checkpoint '
                                                    r'\(1, 4\) vs model \(1, 3\)'):
        runner.train()
    assert runner.iter == 0


def test_load_from_matching_nothing_is_an_error(tmp_path, repo_root):
    path = tmp_path / 'foreign.pth'
    torch.save({'state_dict': {'backbone.conv.weight': torch.zeros(2, 2)}}, path)
    runner = RUNNERS.build(_cfg(repo_root, tmp_path / 'w', max_iters=1, load_from=str(path)))
    with pytest.raises(CheckpointFormatError, match='contains no tensor of this model'):
        runner.train()


def test_previous_best_is_deleted_only_after_the_new_best_is_written(tmp_path, repo_root, monkeypatch):
    work = tmp_path / 'w'
    cfg = _cfg(repo_root, work, max_iters=15, interval=100, keep=1)
    cfg.train_cfg.val_interval = 5
    cfg.default_hooks.checkpoint.save_best = 'mse'
    cfg.default_hooks.checkpoint.rule = 'greater'  # this toy's val MSE rises after iteration 5: new bests
    runner = RUNNERS.build(cfg)
    seen = []
    original = runner.save_checkpoint

    def spy(out_dir, filename, *args, **kwargs):
        if filename.startswith('best_'):
            seen.append((filename, sorted(p.name for p in work.glob('best_*.pth'))))
        return original(out_dir, filename, *args, **kwargs)

    monkeypatch.setattr(runner, 'save_checkpoint', spy)
    runner.train()
    bests = sorted(p.name for p in work.glob('best_*.pth'))
    assert len(bests) == 1  # one best file in the end
    assert len(seen) >= 2, seen  # the loss kept falling: a new best at several validations
    for i, (name, existing) in enumerate(seen[1:], 1):
        assert seen[i - 1][0] in existing, (name, existing)  # the previous best was still there while writing
    assert bests[0] == seen[-1][0]
