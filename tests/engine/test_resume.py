"""Resume continues exactly: same weights, optimizer, scheduler and data stream as an uninterrupted run."""
import os
import pickle
import subprocess
import sys

import pytest
import torch
from mmengine.config import Config

import ovseg.registry  # noqa: F401  (allow-lists the types of mmengine checkpoints for weights-only loading)
from ovseg.registry import RUNNERS

CFG = 'tests/helpers/toy_regression.py'


def _run(repo_root, work_dir, max_iters=20, resume=False, load_from=None, crash_at=None):
    cfg = Config.fromfile(str(repo_root / CFG))
    cfg.work_dir = str(work_dir)
    cfg.train_cfg.max_iters = max_iters
    if crash_at:
        cfg.custom_hooks = [dict(type='StopAtIterHook', stop_iter=crash_at)]
    cfg.resume = resume
    cfg.load_from = load_from
    cfg.experiment_name = f'run_{max_iters}_{int(resume)}_{os.getpid()}_{id(cfg)}'
    runner = RUNNERS.build(cfg)  # OVSegRunner, as tools/train.py builds it
    runner.train()
    return runner


def test_resume_matches_uninterrupted_run(tmp_path, repo_root):
    full = _run(repo_root, tmp_path / 'full')
    _run(repo_root, tmp_path / 'part', crash_at=10)
    ckpt = tmp_path / 'part' / 'iter_10.pth'
    assert ckpt.is_file()
    assert not (tmp_path / 'part' / 'iter_20.pth').exists()
    resumed = _run(repo_root, tmp_path / 'part', resume=True, load_from=str(ckpt))

    assert resumed.iter == 20
    for (name, a), b in zip(full.model.state_dict().items(), resumed.model.state_dict().values()):
        assert torch.equal(a, b), f'{name} differs after resume'
    # the checksum buffer hashes the exact sample order: resume fed the same stream
    assert full.model.seen_checksum.item() == resumed.model.seen_checksum.item()
    assert full.optim_wrapper.get_lr() == resumed.optim_wrapper.get_lr()


def test_auto_resume_picks_latest(tmp_path, repo_root):
    _run(repo_root, tmp_path / 'w', crash_at=10)
    runner = _run(repo_root, tmp_path / 'w', resume=True)  # load_from=None: latest in work_dir
    assert runner.iter == 20


def test_mmengine_checkpoint_loads_weights_only(tmp_path, repo_root):
    """The allow-list covers what mmengine writes; weights-only loading stays on."""
    _run(repo_root, tmp_path / 'w', crash_at=10)
    ckpt = torch.load(tmp_path / 'w' / 'iter_10.pth', map_location='cpu', weights_only=True)
    assert {'meta', 'state_dict', 'optimizer', 'message_hub', 'param_schedulers'} <= set(ckpt)


class _Exploit:
    def __reduce__(self):
        return (os.system, ('echo pwned > /dev/null',))


def test_untrusted_pickle_is_still_refused(tmp_path):
    path = tmp_path / 'evil.pth'
    torch.save({'state_dict': {}, 'x': _Exploit()}, path)
    with pytest.raises(pickle.UnpicklingError):
        torch.load(path, map_location='cpu')  # default weights_only=True under torch >= 2.6


def test_train_tool_resume_flag(tmp_path, repo_root):
    """tools/train.py --resume (no path) continues from the latest checkpoint."""
    env = dict(os.environ, PYTHONPATH=str(repo_root))
    crashing = tmp_path / 'crashing.py'
    crashing.write_text(f"_base_ = ['{repo_root / CFG}']\n"
                        "custom_hooks = [dict(type='StopAtIterHook', stop_iter=10)]\n")
    work = ['--work-dir', str(tmp_path / 'work')]
    subprocess.run([sys.executable, 'tools/train.py', str(crashing)] + work, cwd=repo_root, env=env, check=True,
                   capture_output=True)
    assert not (tmp_path / 'work' / 'iter_20.pth').exists()
    out = subprocess.run([sys.executable, 'tools/train.py', CFG, '--resume'] + work, cwd=repo_root, env=env,
                         check=True, capture_output=True, text=True)
    log = out.stdout + out.stderr
    assert 'resumed' in log.lower() or 'Resumed' in log
    assert (tmp_path / 'work' / 'iter_20.pth').is_file()
