"""TrainableParamsOptimWrapperConstructor: mmengine's paramwise semantics on exactly the trainable parameters."""
import logging
import os

import pytest
import torch
from mmengine.config import Config
from mmengine.logging import MMLogger
from mmengine.optim import DefaultOptimWrapperConstructor
from torch import nn

import ovseg.engine  # noqa: F401
from ovseg.engine import OVSegRunner, TrainableParamsOptimWrapperConstructor, build_trainable_optim_wrapper


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.backbone = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))
        self.neck = nn.Linear(4, 4)
        self.head = nn.Sequential(nn.Linear(4, 4), nn.LayerNorm(4), nn.Linear(4, 2))
        self.query_embed = nn.Embedding(3, 4)
        self.backbone.requires_grad_(False)
        self.head[0].bias.requires_grad_(False)


OPTIM = dict(type='OptimWrapper', optimizer=dict(type='AdamW', lr=1e-3, weight_decay=0.05))
PARAMWISE = dict(norm_decay_mult=0.0, bias_lr_mult=2.0, custom_keys={'query_embed': dict(decay_mult=0.0),
                                                                     'neck': dict(lr_mult=0.1)})


def _groups(wrapper, model):
    names = {id(p): n for n, p in model.named_parameters()}
    return [({names[id(p)] for p in g['params']}, {k: v for k, v in g.items() if k != 'params'})
            for g in wrapper.optimizer.param_groups]


def test_paramwise_groups_equal_mmengine_default_and_frozen_skips_are_not_logged_one_by_one():
    model = Net()
    logger = MMLogger.get_current_instance()
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    logger.addHandler(handler)
    try:
        ours = TrainableParamsOptimWrapperConstructor(dict(OPTIM), PARAMWISE)(model)
    finally:
        logger.removeHandler(handler)
    ref = DefaultOptimWrapperConstructor(dict(OPTIM), PARAMWISE)(model)  # skips frozen ones with a warning each
    assert _groups(ours, model) == _groups(ref, model)
    assert not any('requires_grad=False' in r.getMessage() for r in records)
    held = set().union(*(names for names, _ in _groups(ours, model)))
    assert held == {n for n, p in model.named_parameters() if p.requires_grad}
    neck = next(h for names, h in _groups(ours, model) if names == {'neck.weight'})
    assert neck['lr'] == pytest.approx(1e-4)


def test_without_paramwise_cfg_only_trainable_parameters_enter():
    model = Net()
    ours = build_trainable_optim_wrapper(model, OPTIM)
    ref = DefaultOptimWrapperConstructor(dict(OPTIM))(model)  # mmengine: every parameter, frozen included
    trainable = [p for p in model.parameters() if p.requires_grad]
    assert [id(p) for p in ours.optimizer.param_groups[0]['params']] == [id(p) for p in trainable]
    assert len(ref.optimizer.param_groups[0]['params']) == len(list(model.parameters())) > len(trainable)
    hyper = {k: v for k, v in ours.optimizer.param_groups[0].items() if k != 'params'}
    assert hyper == {k: v for k, v in ref.optimizer.param_groups[0].items() if k != 'params'}
    model.requires_grad_(False)
    with pytest.raises(ValueError, match='nothing to optimise'):
        build_trainable_optim_wrapper(model, OPTIM)


def _toy_cfg(repo_root, work_dir, **extra):
    cfg = Config.fromfile(str(repo_root / 'tests/helpers/toy_regression.py'))
    cfg.work_dir = str(work_dir)
    cfg.log_level = 'WARNING'
    cfg.experiment_name = f'optim_{work_dir.name}_{os.getpid()}_{id(cfg)}'  # one logger per run
    cfg.merge_from_dict(extra)
    return cfg


def test_runner_defaults_to_the_trainable_constructor_and_warns_about_foreign_ones(repo_root, tmp_path):
    runner = OVSegRunner.from_cfg(_toy_cfg(repo_root, tmp_path / 'a', trainable_params=dict(freeze=['bias'])))
    wrapper = runner.build_optim_wrapper(runner.optim_wrapper)
    assert [p for g in wrapper.optimizer.param_groups for p in g['params']] == [runner.model.linear.weight]
    cfg = _toy_cfg(repo_root, tmp_path / 'b', trainable_params=dict(freeze=['bias']))
    cfg.optim_wrapper.constructor = 'DefaultOptimWrapperConstructor'
    runner = OVSegRunner.from_cfg(cfg)
    warnings = []
    handler = logging.Handler(level=logging.WARNING)
    handler.emit = warnings.append
    runner.logger.addHandler(handler)
    runner.build_optim_wrapper(runner.optim_wrapper)
    runner.logger.removeHandler(handler)
    assert any('holds 1 frozen parameter tensors' in w.getMessage() for w in warnings)


def test_batch_aware_sampler_must_match_the_dataloader_batch_size(repo_root, tmp_path):
    import tests.helpers.toy_modules  # noqa: F401  (ToyRegressionDataset)
    loader = dict(batch_size=4, num_workers=0,
                  sampler=dict(type='MultiSourceSampler', batch_size=3, counts=dict(a=2, b=1), seed=0),
                  dataset=dict(type='MultiSourceDataset', sources=dict(
                      a=dict(type='ToyRegressionDataset', size=8), b=dict(type='ToyRegressionDataset', size=8))))
    runner = OVSegRunner.from_cfg(_toy_cfg(repo_root, tmp_path))
    with pytest.raises(ValueError, match='MultiSourceSampler lays out batches of 3 samples but the dataloader '
                                         'batches 4'):
        runner.build_dataloader(loader)
    loader['batch_size'] = 3
    batch = next(iter(runner.build_dataloader(loader)))
    assert len(batch['index']) == 3
    assert torch.is_tensor(batch['inputs'][0])
