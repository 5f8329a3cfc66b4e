"""End-to-end: the tiny FC-CLIP learns ToyScenes on CPU, and a saved checkpoint re-evaluates identically."""
import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.runner import Runner

CONFIG = 'configs/fcclip/fcclip_tiny_toy-scenes.py'
ITERS = 100


def require_fcclip_modules():
    """Register the FC-CLIP modules (pixel decoder, decoder, criterion) before building configs."""
    import ovseg.models  # noqa: F401


def _cfg(repo_root, work_dir, iters=ITERS):
    cfg = Config.fromfile(str(repo_root / CONFIG))
    cfg.work_dir = str(work_dir)
    cfg.train_cfg.max_iters = iters
    cfg.train_cfg.val_interval = iters + 1  # no val during training; we test explicitly below
    cfg.param_scheduler[-1].end = iters
    cfg.param_scheduler[-1].milestones = [int(iters * 0.85)]
    cfg.default_hooks.checkpoint.interval = iters
    cfg.default_hooks.logger.interval = 10
    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        cfg[key].num_workers = 0
        cfg[key].persistent_workers = False
    cfg.log_level = 'WARNING'
    return cfg


def _flat(metrics):
    return {k: float(v) for k, v in metrics.items() if isinstance(v, (int, float, np.floating))}


@pytest.mark.slow
def test_tiny_fcclip_learns_and_checkpoint_reloads(repo_root, tmp_path, monkeypatch):
    require_fcclip_modules()
    monkeypatch.chdir(repo_root)  # data/toy_scenes is generated (once) under the repo
    torch.manual_seed(0)
    runner = Runner.from_cfg(_cfg(repo_root, tmp_path / 'train'))
    runner.train()
    values = np.asarray(runner.message_hub.get_scalar('train/loss').data[0], dtype=np.float64)
    assert len(values) == ITERS and np.isfinite(values).all()
    first, last = values[:10].mean(), values[-10:].mean()
    assert last < 0.6 * first, f'loss did not drop enough: {first:.3f} -> {last:.3f}'

    metrics = _flat(runner.test())
    pq = [v for k, v in metrics.items() if k.split('/')[-1] == 'PQ']
    miou = [v for k, v in metrics.items() if k.split('/')[-1] == 'mIoU']
    assert pq and miou, metrics
    assert miou[0] > 10.0  # well above a constant prediction after 100 iterations

    ckpt = tmp_path / 'train' / f'iter_{ITERS}.pth'
    assert ckpt.is_file()
    cfg = _cfg(repo_root, tmp_path / 'reload')
    cfg.load_from = str(ckpt)
    reloaded = _flat(Runner.from_cfg(cfg).test())
    assert reloaded.keys() == metrics.keys()
    for k, v in metrics.items():
        assert reloaded[k] == pytest.approx(v, abs=1e-6), k
