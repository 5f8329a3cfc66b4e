"""A SEEM toy strategy config end to end on a small toy split: tools/train.py loads a "pretrained" checkpoint, applies
the backbone + decoder adapters, trains 2 iterations (only the adapters move), resumes to 3, and tools/test.py scores
grounding (cIoU / gIoU). The batch-size check itself: test_strategies.py."""
import os
import subprocess
import sys

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope

from ovseg.registry import MODELS

CFG = 'configs/seem_ft/seem_tiny_toy-backbone-adapter-decoder-adapter.py'


def _options(tmp_path, ckpt):
    root = str(tmp_path / 'toy')
    opts = [f'load_from={ckpt}', 'train_cfg.max_iters=2', 'train_cfg.val_interval=100', 'train_cfg.val_begin=100',
            'default_hooks.checkpoint.interval=1', 'default_hooks.logger.interval=1', 'log_processor.window_size=1',
            'train_dataloader.num_workers=0', 'train_dataloader.persistent_workers=False',
            'val_dataloader.num_workers=0', 'val_dataloader.persistent_workers=False',
            'test_dataloader.num_workers=0', 'test_dataloader.persistent_workers=False',
            'train_batch_size_per_gpu=2', 'train_dataloader.batch_size=2', 'train_batch_size_total=2']
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        opts += [f'{loader}.dataset.data_root={root}', f'{loader}.dataset.generate.num_train=6',
                 f'{loader}.dataset.generate.num_val=3', f'{loader}.dataset.generate.size=(64,64)']
    opts += ['train_dataloader.dataset.pipeline.3.target_size=(64,64)',
             'train_dataloader.dataset.pipeline.4.crop_size=(64,64)']
    return opts


def _run(repo_root, args, timeout=120):
    env = dict(os.environ, OMP_NUM_THREADS='1', CUDA_VISIBLE_DEVICES='')
    out = subprocess.run([sys.executable, *args], cwd=repo_root, env=env, capture_output=True, text=True,
                         timeout=timeout)
    log = out.stdout + out.stderr
    assert out.returncode == 0, log[-4000:]
    return log


def _pretrained(path):
    """A "pretrained" tiny toy SEEM checkpoint (the base model, no adapters), as seem_tiny_toy-pretrain.py writes."""
    init_default_scope('ovseg')
    torch.manual_seed(1)
    model = MODELS.build(Config.fromfile(CFG).model)
    torch.save(dict(state_dict=model.state_dict(), meta=dict()), path)
    return model.state_dict()


def test_toy_strategy_trains_resumes_and_tests(tmp_path, repo_root):
    work = tmp_path / 'work'
    base = _pretrained(tmp_path / 'pretrained.pth')
    opts = _options(tmp_path, tmp_path / 'pretrained.pth')
    log = _run(repo_root, ['tools/train.py', CFG, '--work-dir', str(work), '--cfg-options', *opts])
    assert 'Trainable parameters:' in log and 'training batch: 2 = 2 per process x 1 processes' in log
    state = torch.load(work / 'iter_2.pth', map_location='cpu', weights_only=True)['state_dict']
    adapters = [k for k in state if '.adapters.' in k]
    assert adapters and any(k.startswith('backbone.') for k in adapters)
    # the pretrained weights loaded and stayed frozen; the adapters moved
    frozen = [k for k in base if k in state and base[k].is_floating_point()]
    assert len(frozen) == len(base) and all(torch.equal(base[k], state[k]) for k in frozen)
    assert any(k.endswith('up.weight') and state[k].abs().sum() > 0 for k in adapters)

    opts_resume = [o for o in opts if not o.startswith('train_cfg.max_iters')] + ['train_cfg.max_iters=3']
    log = _run(repo_root, ['tools/train.py', CFG, '--work-dir', str(work), '--resume', '--cfg-options',
                           *opts_resume])
    assert 'resumed epoch: 0, iter: 2' in log and (work / 'iter_3.pth').is_file()

    log = _run(repo_root, ['tools/test.py', CFG, str(work / 'iter_3.pth'), '--work-dir', str(work / 'test'),
                           '--cfg-options', *opts])
    assert 'refer/cIoU' in log and 'refer/gIoU' in log



@pytest.mark.slow
def test_spatial_toy_trains_under_dist_train_with_zero_click_rounds(tmp_path, repo_root):
    """Two gloo processes, spatial loop on with 0 click rounds: the spatial memories get no gradient in such a step,
    which DDP refuses unless the config says find_unused_parameters (SEEM's FIND_UNUSED_PARAMETERS True); the val
    loop reports SEEM's interactive scores."""
    from tests.tools.test_dist_train import run_dist_train
    opts = [o for o in _options(tmp_path, 'None') if 'test_dataloader' not in o]
    opts = [o.replace('train_batch_size_total=2', 'train_batch_size_total=4') for o in opts]
    opts += ['train_cfg.val_interval=2', 'train_cfg.val_begin=1', 'model.spatial_training.min_iter=0',
             'model.spatial_training.max_iter=0', 'model.test_cfg.interactive_clicks=2']
    out = run_dist_train(repo_root, 'configs/seem_ft/seem_tiny_toy-frozen-backbone-full-decoder-spatial.py',
                         tmp_path / 'work', extra=['--cfg-options', *opts])
    log = out.stdout + out.stderr
    assert out.returncode == 0, log[-4000:]
    assert 'GPU number: 2' in log and 'd0.loss_spatial_ce' in log and 'interactive/NoC@85' in log
