"""FSDP through OVSegFlexibleRunner + OVSegFSDPStrategy on 2 gloo CPU processes (tools/dist_train.sh).

The toy MLP of ``tests/helpers/toy_fsdp.py`` (``configs/_base_/fsdp.py``): LoRA on a frozen trunk plus a fully
trained head, so FSDP units mix frozen and trainable parameters (``use_orig_params=True``). Trained 4 iterations
in one go vs. 2 iterations, stopped, then ``--resume``d to 4: weights and AdamW state are bit-identical, the
frozen weights never move, every checkpoint is one full file that loads weights-only, and the resume went
through the (fixed) optimizer-state load.
"""
from __future__ import annotations

import inspect
from types import SimpleNamespace

import pytest
import torch
from mmengine._strategy import FSDPStrategy
from mmengine.config import Config
from torch.distributed.fsdp import FullyShardedDataParallel

import ovseg.registry  # noqa: F401  (weights-only allow-list of mmengine's checkpoint types)
from ovseg.engine.fsdp import OVSegFSDPStrategy, clean_param_name, layer_name_auto_wrap_policy
from ovseg.utils.launch import check_runner_for_strategy
from tests.engine.test_exact_resume import _train

CONFIG = 'tests/helpers/toy_fsdp.py'
FROZEN = ['trunk.0.base_layer.weight', 'trunk.0.base_layer.bias', 'trunk.2.base_layer.weight',
          'trunk.2.base_layer.bias']


def _load(path):
    return torch.load(path, map_location='cpu', weights_only=True)


def _stopping(tmp_path, repo_root, stop_iter: int, hooks: str = '') -> str:
    path = tmp_path / f'stop_{stop_iter}.py'
    path.write_text(f"_base_ = ['{repo_root / CONFIG}']\n"
                    f"custom_hooks = [dict(type='StopAtIterHook', stop_iter={stop_iter}){hooks}]\n")
    return str(path)


def _run(repo_root, config, work_dir, *extra):
    out = _train(repo_root, config, work_dir, 2, list(extra))
    log = out.stdout + out.stderr
    assert out.returncode == 0, log[-4000:]
    return log


@pytest.mark.slow
def test_fsdp_resume_equals_uninterrupted_run(tmp_path, repo_root):
    full_log = _run(repo_root, CONFIG, tmp_path / 'full')
    assert 'GPU number: 2' in full_log  # two processes (mmengine's name for the world size)
    assert "type='OVSegFSDPStrategy'" in full_log and 'Trainable parameters: 241 of 1,585' in full_log
    # the interrupted run writes trainable-only checkpoints (TrainableCheckpointHook, FSDP-prefixed names)
    _run(repo_root, _stopping(tmp_path, repo_root, 2, ", dict(type='TrainableCheckpointHook')"), tmp_path / 'part')
    assert (tmp_path / 'part' / 'iter_2.pth').is_file() and not (tmp_path / 'part' / 'iter_4.pth').exists()
    part = _load(tmp_path / 'part' / 'iter_2.pth')
    assert not set(FROZEN) & set(part['state_dict']) and len(part['state_dict']) == 6
    assert part['meta']['trainable_only'] == dict(dropped=4, kept=6)
    resumed_log = _run(repo_root, CONFIG, tmp_path / 'part', '--resume')  # frozen weights: from the model build

    # the resume restored the AdamW state (step 2) through the keyword call, the data stream and random streams
    assert 'OVSegFSDPStrategy: optimizer state loaded (6 parameter states, step 2)' in resumed_log
    assert 'resumed epoch: 0, iter: 2' in resumed_log and 'Restored the random streams' in resumed_log
    assert 'Resumed data stream at iteration 2 without re-loading samples' in resumed_log

    # single full files (not per-rank folders), loadable weights-only
    init = _load(tmp_path / 'full' / 'iter_2.pth')
    full, resumed = _load(tmp_path / 'full' / 'iter_4.pth'), _load(tmp_path / 'part' / 'iter_4.pth')
    assert (tmp_path / 'part' / 'iter_4.pth').is_file() and not list(tmp_path.rglob('rank*.pth'))
    assert full['meta']['iter'] == resumed['meta']['iter'] == 4
    assert set(full['meta']['lora']['layers']) == {'trunk.0', 'trunk.2'}  # LoRA merge metadata
    assert len(full['meta']['random_states']) == 2

    # trainable weights and optimizer state equal, bit for bit
    trainable = [k for k in full['state_dict'] if 'lora_' in k or k.startswith('head.')]
    assert len(trainable) == 6 and set(full['state_dict']) == set(trainable) | set(FROZEN)
    for key in full['state_dict']:
        assert torch.equal(full['state_dict'][key], resumed['state_dict'][key]), f'{key} differs after resume'
    for key in trainable:
        if 'lora_B' in key or key.startswith('head.'):  # lora_A has no gradient at step 1 (B starts at 0)
            assert not torch.equal(full['state_dict'][key], init['state_dict'][key]), f'{key} did not train'
    assert set(full['optimizer']['state']) == set(trainable)  # the optimizer held exactly the trainable set
    for key, state in full['optimizer']['state'].items():
        assert int(state['step']) == 4 and int(init['optimizer']['state'][key]['step']) == 2
        assert not torch.equal(state['exp_avg'], state['exp_avg_sq'])  # the CPU offload aliasing (fixed)
        for name, value in state.items():
            assert torch.equal(value, resumed['optimizer']['state'][key][name]), f'{key}.{name} differs'
    # frozen parameters bit-identical to the initialisation (seeded model build, same in every run)
    torch.manual_seed(0)
    from tests.helpers.fsdp_toy import ToyMLPRegressor
    fresh = ToyMLPRegressor(dim=8, hidden=32).state_dict()
    for key in FROZEN:
        plain = key.replace('.base_layer', '')
        assert torch.equal(full['state_dict'][key], fresh[plain]), f'frozen {key} changed'
        assert torch.equal(resumed['state_dict'][key], fresh[plain])


# ------------------------------------------------------------------------------------------------ unit tests
def _keyword_only_fake(calls):
    def optim_state_dict_to_load(*, model, optim, optim_state_dict, **kwargs):
        calls.append((model, optim, optim_state_dict))
        return {'loaded': optim_state_dict}
    return staticmethod(optim_state_dict_to_load)


def test_optim_state_load_passes_keywords(monkeypatch):
    """torch >= 2.1's order is (model, optim, optim_state_dict); mmengine 0.10.7 passes (state, model, optim)."""
    params = list(inspect.signature(FullyShardedDataParallel.optim_state_dict_to_load).parameters)
    assert params[:3] == ['model', 'optim', 'optim_state_dict']
    calls, loaded = [], []
    monkeypatch.setattr(FullyShardedDataParallel, 'optim_state_dict_to_load', _keyword_only_fake(calls))
    strategy = SimpleNamespace(model='MODEL', optim_wrapper=SimpleNamespace(optimizer='OPTIM',
                                                                            load_state_dict=loaded.append),
                               logger=SimpleNamespace(info=lambda msg: None))
    state = {'state': {'w': {'step': torch.tensor(3.0)}}, 'param_groups': []}
    OVSegFSDPStrategy.load_optim_state_dict(strategy, state)
    assert calls == [('MODEL', 'OPTIM', state)] and loaded == [{'loaded': state}]
    with pytest.raises(TypeError):  # mmengine's original positional call
        FSDPStrategy.load_optim_state_dict(strategy, state)


def test_wrap_policy_and_names():
    layer = torch.nn.Linear(2, 2)
    assert layer_name_auto_wrap_policy(layer, recurse=False, nonwrapped_numel=6, layer_names=['Linear'])
    assert not layer_name_auto_wrap_policy(layer, recurse=False, nonwrapped_numel=6, layer_names=['Conv2d'])
    assert layer_name_auto_wrap_policy(layer, recurse=True, nonwrapped_numel=6, layer_names=[])
    assert clean_param_name('a._fsdp_wrapped_module.b._checkpoint_wrapped_module.w') == 'a.b.w'
    from mmengine.registry import FUNCTIONS
    assert FUNCTIONS.get('size_based_auto_wrap_policy') is not None
    assert FUNCTIONS.get('layer_name_auto_wrap_policy') is layer_name_auto_wrap_policy


def test_trainable_ema_hook_refuses_fsdp(tmp_path):
    """Shards cannot be averaged into a usable teacher: a clear error at before_run (1-process gloo group)."""
    from ovseg.engine.hooks import TrainableEMAHook
    torch.distributed.init_process_group('gloo', init_method=f'file://{tmp_path / "pg"}', rank=0, world_size=1)
    try:
        model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.Linear(4, 1))
        wrapped = FullyShardedDataParallel(model, device_id=torch.device('cpu'), use_orig_params=True)
        with pytest.raises(NotImplementedError, match='TrainableEMAHook does not support FSDP'):
            TrainableEMAHook(decay=0.9).before_run(SimpleNamespace(model=wrapped))
    finally:
        torch.distributed.destroy_process_group()


def test_strategy_defaults_to_full_state_dict():
    strategy = OVSegFSDPStrategy.__new__(OVSegFSDPStrategy)
    strategy._init_state_dict_cfg('full')
    assert inspect.signature(OVSegFSDPStrategy.__init__).parameters['state_dict_cfg'].default == 'full'
    assert strategy._is_full_state_dict()


def test_strategy_needs_flexible_runner(repo_root):
    cfg = Config.fromfile(str(repo_root / CONFIG))
    check_runner_for_strategy(cfg)  # runner_type='OVSegFlexibleRunner': fine
    cfg.runner_type = 'OVSegRunner'
    with pytest.raises(ValueError, match="set runner_type = 'OVSegFlexibleRunner'"):
        check_runner_for_strategy(cfg)
