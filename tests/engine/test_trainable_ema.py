"""TrainableEMA / TrainableEMAHook: mmengine's EMA on the trainable set, memory, teacher passes, exact resume."""
import copy
import logging
import os
from types import SimpleNamespace

import pytest
import torch
from mmengine.config import Config
from mmengine.model import ExponentialMovingAverage
from torch import nn

import ovseg.engine  # noqa: F401
from ovseg.engine import OVSegRunner, TrainableEMA
from ovseg.engine.hooks import TrainableEMAHook

CFG = 'tests/helpers/toy_regression.py'


class Student(nn.Module):
    """A frozen 'encoder', a trainable head with dropout and a BatchNorm whose statistics can be averaged."""

    def __init__(self):
        super().__init__()
        self.encoder = nn.Linear(6, 8)
        self.bn = nn.BatchNorm1d(8)
        self.head = nn.Sequential(nn.Linear(8, 8), nn.Dropout(0.5), nn.Linear(8, 3))
        self.encoder.requires_grad_(False)

    def forward(self, x):
        return self.head(self.bn(self.encoder(x)))


def _student():
    torch.manual_seed(0)
    return Student()


def _steps(model, n, seed=0):
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.5)
    g = torch.Generator().manual_seed(seed)
    for _ in range(n):
        x = torch.randn(5, 6, generator=g)
        opt.zero_grad()
        model(x).pow(2).mean().backward()
        opt.step()
        yield


def test_equals_mmengine_ema_on_the_trainable_parameters_step_by_step():
    model = _student()
    ours = TrainableEMA(model, momentum=0.1, interval=2, buffers=[r'^bn\.running_'])
    ref = ExponentialMovingAverage(model, momentum=0.1, interval=2, update_buffers=True)
    assert set(ours.shadow) == {'bn.weight', 'bn.bias', 'head.0.weight', 'head.0.bias', 'head.2.weight',
                                'head.2.bias', 'bn.running_mean', 'bn.running_var'}
    for step in _steps(model, 7):
        ours.update()
        ref.update_parameters(model)
        ref_state = ref.module.state_dict()
        for name, value in ours.shadow.items():
            assert torch.equal(value, ref_state[name]), (ours.steps, name)
    assert ours.steps == 7 and not torch.equal(ours.shadow['head.0.weight'], model.head[0].weight)
    # memory: shadows of the trained tensors only, mmengine copies the whole model
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert ours.num_elements == trainable + 2 * 8  # + the two averaged BatchNorm statistics
    assert sum(p.numel() for p in ref.module.parameters()) == sum(p.numel() for p in model.parameters())
    assert ours.num_elements < sum(p.numel() for p in model.parameters())


def test_decay_is_one_minus_momentum_and_bad_rates_fail():
    assert TrainableEMA(_student(), decay=0.999).momentum == pytest.approx(0.001)
    with pytest.raises(ValueError, match='exactly one of momentum'):
        TrainableEMA(_student(), momentum=0.1, decay=0.9)
    with pytest.raises(ValueError, match=r'must be in \(0, 1\)'):
        TrainableEMA(_student(), decay=1.0)
    with pytest.raises(ValueError, match='not a float buffer'):
        TrainableEMA(_student(), momentum=0.1, buffers=['num_batches_tracked'])
    frozen = _student().requires_grad_(False)
    with pytest.raises(ValueError, match='no trainable parameter'):
        TrainableEMA(frozen, momentum=0.1)


def _teacher_reference(model, ema):
    twin = copy.deepcopy(model)
    twin.load_state_dict({**model.state_dict(), **ema.shadow})
    return twin.eval()


def test_teacher_forward_equals_a_copy_with_the_shadow_loaded_and_leaves_the_student_alone():
    model = _student()
    ema = TrainableEMA(model, momentum=0.3)
    for _ in _steps(model, 4):
        ema.update()
    x = torch.randn(4, 6)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    model.train()
    out = ema(x)
    assert torch.equal(out, _teacher_reference(model, ema)(x)) and not out.requires_grad
    assert model.training and model.head[1].training  # modes restored
    assert all(torch.equal(p, before[n]) for n, p in model.named_parameters())
    with ema.swapped() as teacher:
        assert teacher is model and not model.training
        assert torch.equal(model(x), out)
    assert all(torch.equal(p, before[n]) for n, p in model.named_parameters()) and model.training


def test_teacher_pass_inside_a_training_step_keeps_the_student_gradients():
    model = _student().eval()  # no dropout: the two student passes must be comparable
    ema = TrainableEMA(model, momentum=0.3, teacher_eval=False)
    for _ in _steps(model, 3):
        ema.update()
    model.eval()
    x = torch.randn(4, 6)
    model.zero_grad()
    model(x).pow(2).sum().backward()
    expected = {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}
    model.zero_grad()
    loss = model(x).pow(2).sum()  # student graph built first
    with ema.swapped():
        target = model(x).detach()  # teacher pass in the middle of the step
    (loss + 0 * target.sum()).backward()
    for n, p in model.named_parameters():
        if p.requires_grad:
            assert torch.equal(p.grad, expected[n]), n


def test_state_dict_round_trip_and_mismatch_errors():
    model = _student()
    ema = TrainableEMA(model, momentum=0.2)
    for _ in _steps(model, 3):
        ema.update()
    state = ema.state_dict()
    other = TrainableEMA(_student(), momentum=0.2)
    other.load_state_dict(state)
    assert other.steps == 3 and all(torch.equal(other.shadow[k], v) for k, v in ema.shadow.items())
    bigger = _student()
    bigger.encoder.requires_grad_(True)
    with pytest.raises(KeyError, match=r"missing \['encoder.bias', 'encoder.weight'\]"):
        TrainableEMA(bigger, momentum=0.2).load_state_dict(state)


def _cfg(repo_root, work_dir, hooks, max_iters=20, **extra):
    cfg = Config.fromfile(str(repo_root / CFG))
    cfg.work_dir = str(work_dir)
    cfg.train_cfg.max_iters = max_iters
    cfg.custom_hooks = hooks
    cfg.log_level = 'WARNING'
    cfg.experiment_name = f'ema_{work_dir.name}_{os.getpid()}_{id(cfg)}'  # one logger per run
    cfg.merge_from_dict(extra)
    return cfg


EMA_HOOK = dict(type='TrainableEMAHook', momentum=0.2, interval=2, begin_iter=3)


def test_hook_follows_mmengine_ema_hook_in_the_same_run(repo_root, tmp_path):
    """begin_iter / interval semantics as mmengine's EMAHook, on the trainable subset (bias frozen)."""
    hooks = [EMA_HOOK, dict(type='EMAHook', momentum=0.2, interval=2, begin_iter=3)]
    runner = OVSegRunner.from_cfg(_cfg(repo_root, tmp_path, hooks, trainable_params=dict(freeze=['bias'])))
    runner.train()
    ours = runner.model.ema_teacher
    mm = next(h for h in runner.hooks if type(h).__name__ == 'EMAHook').ema_model.module
    assert list(ours.shadow) == ['linear.weight']
    assert torch.equal(ours.shadow['linear.weight'], mm.linear.weight)
    assert not torch.equal(ours.shadow['linear.weight'], runner.model.linear.weight)


def test_resume_continues_the_shadow_exactly(repo_root, tmp_path):
    full = OVSegRunner.from_cfg(_cfg(repo_root, tmp_path / 'full', [EMA_HOOK]))
    full.train()
    crash = dict(type='StopAtIterHook', stop_iter=10)
    OVSegRunner.from_cfg(_cfg(repo_root, tmp_path / 'part', [EMA_HOOK, crash])).train()
    ckpt = torch.load(tmp_path / 'part' / 'iter_10.pth', map_location='cpu', weights_only=True)
    assert ckpt['trainable_ema']['steps'] == 10 - 2  # iterations 3..10 updated
    resumed = OVSegRunner.from_cfg(_cfg(repo_root, tmp_path / 'part', [EMA_HOOK], resume=True,
                                        load_from=str(tmp_path / 'part' / 'iter_10.pth')))
    resumed.train()
    a, b = full.model.ema_teacher, resumed.model.ema_teacher
    assert a.steps == b.steps == 18
    assert all(torch.equal(a.shadow[k], b.shadow[k]) for k in a.shadow)


def test_eval_swap_and_loading_a_checkpoint_without_ema_state():
    model = _student()
    runner = SimpleNamespace(model=model, logger=logging.getLogger('test'), max_iters=10, iter=0)
    hook = TrainableEMAHook(momentum=0.5, eval_with_shadow=True)
    hook.before_run(runner)
    for _ in _steps(model, 2):
        hook.after_train_iter(runner, 0)
        runner.iter += 1
    student = {n: p.detach().clone() for n, p in model.named_parameters()}
    shadow = {n: t.clone() for n, t in model.ema_teacher.shadow.items()}
    hook.before_val_epoch(runner)
    assert all(torch.equal(dict(model.named_parameters())[n], t) for n, t in shadow.items())
    hook.after_val_epoch(runner)
    assert all(torch.equal(p, student[n]) for n, p in model.named_parameters())
    hook.before_run(runner)  # a second run on the same model (runner.test() after train) keeps the EMA
    assert all(torch.equal(model.ema_teacher.shadow[n], t) for n, t in shadow.items())
    fresh = _student()
    hook2 = TrainableEMAHook(momentum=0.5)
    fresh_runner = SimpleNamespace(model=fresh, logger=runner.logger)
    ddp_style = {'module.' + k: v for k, v in model.state_dict().items()}
    hook2.after_load_checkpoint(fresh_runner, dict(state_dict=ddp_style))
    assert all(torch.equal(fresh.ema_teacher.shadow[n], student[n]) for n in shadow)
    assert not all(torch.equal(fresh.ema_teacher.shadow[n], p) for n, p in _student().named_parameters()
                   if n in shadow)
