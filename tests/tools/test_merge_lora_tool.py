"""LoRA through OVSegRunner end to end: base checkpoint in, LoRA checkpoint out, merged by the tool."""
import importlib.util
import os
import subprocess
import sys

import pytest
import torch
from mmengine.config import Config

import ovseg.engine  # noqa: F401
import tests.helpers.toy_modules  # noqa: F401
from ovseg.engine import OVSegRunner
from tests.helpers.toy_modules import ToyRegressor

pytest.importorskip('peft')
CFG = 'tests/helpers/toy_regression.py'
LORA = [dict(type='LoRA', targets=['linear'], r=2, alpha=6)]


def _cfg(repo_root, work_dir, max_iters=4, **extra):
    cfg = Config.fromfile(str(repo_root / CFG))
    cfg.work_dir = str(work_dir)
    cfg.train_cfg.max_iters = max_iters
    cfg.train_cfg.val_interval = 100
    cfg.default_hooks.checkpoint.interval = max_iters
    cfg.log_level = 'WARNING'
    cfg.experiment_name = f'lora_{work_dir.name}_{os.getpid()}_{id(cfg)}'
    cfg.optim_wrapper.optimizer.lr = 0.01  # LoRA's scale 3 makes the toy's lr 0.05 diverge
    cfg.merge_from_dict(extra)
    return cfg


def _load_tool(repo_root):
    spec = importlib.util.spec_from_file_location('merge_lora_tool', repo_root / 'tools/model_converters/merge_lora.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _x():
    return torch.randn(16, 4, generator=torch.Generator().manual_seed(0))


@pytest.mark.slow
def test_lora_run_from_a_base_checkpoint_then_merge(repo_root, tmp_path, capsys):
    OVSegRunner.from_cfg(_cfg(repo_root, tmp_path / 'base')).train()  # a plain fine-tune: the "pretrained" base
    base_ckpt = tmp_path / 'base' / 'iter_4.pth'
    base_sd = torch.load(base_ckpt, map_location='cpu', weights_only=True)['state_dict']

    runner = OVSegRunner.from_cfg(_cfg(repo_root, tmp_path / 'lora', peft=LORA, load_from=str(base_ckpt)))
    runner.train()
    model = runner.model
    # the base weights arrived in the wrapped layer and stayed frozen; only the factors trained
    assert torch.equal(model.linear.base_layer.weight, base_sd['linear.weight'])
    assert torch.equal(model.linear.base_layer.bias, base_sd['linear.bias'])
    assert {n for n, p in model.named_parameters() if p.requires_grad} == {
        'linear.lora_A.default.weight', 'linear.lora_B.default.weight'}
    assert model.linear.lora_B['default'].weight.abs().sum() > 0
    lora_ckpt = tmp_path / 'lora' / 'iter_4.pth'
    meta = torch.load(lora_ckpt, map_location='cpu', weights_only=True)['meta']['lora']
    assert meta == dict(layers={'linear': dict(kind='Linear', adapter='default', scaling=3.0,
                                               fan_in_fan_out=False, groups=1)}, modules_to_save={})

    env = dict(os.environ, PYTHONPATH=str(repo_root))
    out = subprocess.run([sys.executable, 'tools/model_converters/merge_lora.py', str(lora_ckpt),
                          str(tmp_path / 'merged.pth'), '--export-lora', str(tmp_path / 'lora_only.pth')],
                         cwd=repo_root, env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert 'merged 1 LoRA layers and 0 modules_to_save' in out.stdout
    merged = torch.load(tmp_path / 'merged.pth', map_location='cpu', weights_only=True)
    plain = ToyRegressor(dim=4)
    plain.load_state_dict(merged['state_dict'], strict=True)  # original names, nothing missing or extra
    model.eval()
    with torch.no_grad():
        assert torch.allclose(plain(_x()), model(_x()), atol=1e-6)
    lora_only = torch.load(tmp_path / 'lora_only.pth', map_location='cpu', weights_only=True)
    assert set(lora_only['state_dict']) == {'linear.lora_A.default.weight', 'linear.lora_B.default.weight'}

    # a checkpoint without meta['lora'] needs --alpha; with it the result is the same
    ckpt = torch.load(lora_ckpt, map_location='cpu', weights_only=True)
    torch.save(dict(state_dict=ckpt['state_dict']), tmp_path / 'bare.pth')
    tool = _load_tool(repo_root)
    assert tool.main([str(tmp_path / 'bare.pth'), str(tmp_path / 'x.pth')]) == 1
    assert "no meta['lora']" in capsys.readouterr().err
    assert tool.main([str(tmp_path / 'bare.pth'), str(tmp_path / 'y.pth'), '--alpha', '6']) == 0
    again = torch.load(tmp_path / 'y.pth', map_location='cpu', weights_only=True)['state_dict']
    assert all(torch.equal(again[k], v) for k, v in merged['state_dict'].items())


def test_lora_run_resumes_from_its_own_checkpoint(repo_root, tmp_path):
    full = OVSegRunner.from_cfg(_cfg(repo_root, tmp_path / 'full', max_iters=8, peft=LORA))
    full.train()
    part = _cfg(repo_root, tmp_path / 'part', max_iters=8, peft=LORA,
                custom_hooks=[dict(type='StopAtIterHook', stop_iter=4)])
    part.default_hooks.checkpoint.interval = 4
    OVSegRunner.from_cfg(part).train()
    resumed = _cfg(repo_root, tmp_path / 'part', max_iters=8, peft=LORA, resume=True,
                   load_from=str(tmp_path / 'part' / 'iter_4.pth'))
    runner = OVSegRunner.from_cfg(resumed)
    runner.train()
    assert runner.iter == 8
    for (name, a), b in zip(full.model.state_dict().items(), runner.model.state_dict().values()):
        assert torch.isfinite(a).all() and torch.equal(a, b), name
