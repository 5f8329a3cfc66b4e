"""Launch-time config fixes: backend resolution, CPU DDP wrapper, AMP on CPU, registries."""
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import MODELS as MMENGINE_MODELS

from ovseg.registry import DATA_SAMPLERS, HOOKS, LOOPS, MODELS
from ovseg.utils.dist_env import prepare_launch, setup_amp


def _cfg():
    return Config(dict(env_cfg=dict(dist_cfg=dict(backend='auto')),
                       optim_wrapper=dict(type='OptimWrapper', optimizer=dict(type='SGD', lr=0.1))))


def test_auto_backend_resolves_without_launcher():
    cfg = prepare_launch(_cfg(), 'none')
    assert cfg.env_cfg.dist_cfg.backend == ('nccl' if torch.cuda.is_available() else 'gloo')
    assert cfg.launcher == 'none'
    assert 'model_wrapper_cfg' not in cfg


@pytest.mark.skipif(torch.cuda.is_available(), reason='CPU-only behaviour')
def test_pytorch_launcher_without_env_names_the_missing_variable(monkeypatch):
    for key in ('RANK', 'WORLD_SIZE', 'MASTER_ADDR', 'MASTER_PORT'):
        monkeypatch.delenv(key, raising=False)
    with pytest.raises(RuntimeError, match='RANK'):
        prepare_launch(_cfg(), 'pytorch')


@pytest.mark.skipif(torch.cuda.is_available(), reason='CPU-only behaviour')
def test_amp_on_cpu_keeps_fp32_with_a_warning():
    with pytest.warns(UserWarning, match='no CUDA'):
        cfg = setup_amp(_cfg())
    assert cfg.optim_wrapper.type == 'OptimWrapper'


def test_registries_are_children_of_mmengine_roots():
    assert MODELS.parent is MMENGINE_MODELS
    assert MODELS.scope == 'ovseg'
    assert LOOPS.get('ResumableIterBasedTrainLoop') is not None
    assert DATA_SAMPLERS.get('ResumableInfiniteSampler') is not None
    assert HOOKS.get('SegVisualizationHook') is not None


def test_resumable_sampler_fast_forward_equals_iteration():
    from ovseg.datasets.samplers import ResumableInfiniteSampler
    data = list(range(7))
    a = ResumableInfiniteSampler(data, shuffle=True, seed=5)
    it_a = iter(a)
    stream = [next(it_a) for _ in range(30)]
    b = ResumableInfiniteSampler(data, shuffle=True, seed=5)
    b.fast_forward(17)
    it_b = iter(b)
    assert [next(it_b) for _ in range(13)] == stream[17:]
    with pytest.raises(ValueError, match='empty'):
        ResumableInfiniteSampler([], seed=0)


@pytest.mark.skipif(torch.cuda.is_available(), reason='CPU-only behaviour')
def test_recipe_amp_falls_back_to_fp32_on_cpu():
    cfg = _cfg()
    cfg.optim_wrapper.type = 'AmpOptimWrapper'
    cfg.optim_wrapper.loss_scale = 'dynamic'
    with pytest.warns(UserWarning, match='AmpOptimWrapper needs CUDA'):
        prepare_launch(cfg, 'none')
    assert cfg.optim_wrapper.type == 'OptimWrapper' and 'loss_scale' not in cfg.optim_wrapper
