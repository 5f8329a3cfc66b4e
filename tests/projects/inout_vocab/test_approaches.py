"""Every approach of the study from its toy config through OVSegRunner: a few iterations, an evaluation, and the
parameters that must move move while the frozen ones (CLIP, the teacher) stay bit-identical."""
from pathlib import Path

import pytest
import torch
from mmengine.config import Config

from ovseg.engine import OVSegRunner
from tests.projects.inout_vocab.tiny_models import TOY_GENERATE

CONFIGS = Path(__file__).resolve().parents[3] / 'configs/inout_vocab'
ITERS = 2


def _cfg(name: str, work_dir: Path, toy_root: str, ckpts: dict, **dataset) -> Config:
    cfg = Config.fromfile(str(CONFIGS / name))
    cfg.work_dir = str(work_dir)
    cfg.log_level = 'WARNING'
    cfg.train_cfg.max_iters = ITERS
    cfg.train_cfg.val_interval = ITERS
    cfg.param_scheduler = [dict(type='ConstantLR', factor=1.0, begin=0, end=ITERS, by_epoch=False)]
    cfg.default_hooks.checkpoint.interval = ITERS
    cfg.default_hooks.logger.interval = 1
    cfg.optim_wrapper.optimizer.lr = 1e-3  # visible motion in two steps
    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        loader = cfg[key]
        loader.num_workers, loader.persistent_workers, loader.batch_size = 0, False, 2
        loader.dataset.data_root, loader.dataset.generate = toy_root, dict(TOY_GENERATE)
    cfg.train_dataloader.dataset.update(dataset)
    if cfg.get('load_from'):
        cfg.load_from = ckpts['zero_shot']
    model = cfg.model
    if 'teacher_checkpoint' in model:
        model.teacher_checkpoint = ckpts['zero_shot']
    for member, which in (('model_one', 'zero_shot'), ('model_two', 'finetuned'), ('zero_shot', 'zero_shot'),
                          ('finetuned', 'finetuned')):
        if member in model:
            model[member].checkpoint = ckpts[which]
    return cfg


def _snapshot(module) -> dict:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def _changed(before: dict, module, prefix: str) -> tuple[list, list]:
    after = module.state_dict()
    keys = [k for k in before if k.startswith(prefix) and before[k].is_floating_point()]
    return [k for k in keys if not torch.equal(before[k], after[k])], keys


def _train_and_test(cfg):
    runner = OVSegRunner.from_cfg(cfg)
    model = runner.model
    runner.train()  # builds the model weights (load_from) first; compare against the loaded state below
    return runner, model


def _loaded_state(path: str) -> dict:
    return torch.load(path, map_location='cpu', weights_only=True)['state_dict']


def _optimizer_params(runner) -> set:
    return {id(p) for g in runner.optim_wrapper.optimizer.param_groups for p in g['params']}


def _check_metrics(metrics: dict) -> None:
    for key in ('panoptic/PQ', 'panoptic/PQ_th', 'panoptic/PQ_st'):
        assert key in metrics and 0.0 <= float(metrics[key]) <= 100.0, metrics


@pytest.mark.slow
@pytest.mark.parametrize('name,label_config', [('upper-bound_fcclip-tiny_toy-inout-0.py', 0),
                                               ('lower-bound_fcclip-tiny_toy-inout-6.py', 6)])
def test_finetuning_bounds(name, label_config, tmp_path, toy_root, tiny_checkpoints):
    cfg = _cfg(name, tmp_path, toy_root, tiny_checkpoints)
    runner, model = _train_and_test(cfg)
    dataset = runner.train_dataloader.dataset
    things = [s for i in range(len(dataset)) for s in dataset.get_data_info(i)['segments_info'] if s['isthing']]
    assert (len(things) > 0) == (label_config == 0)  # configuration 6 keeps no thing segment
    start = _loaded_state(tiny_checkpoints['zero_shot'])
    moved, keys = _changed(start, model, 'transformer_decoder.')
    assert len(moved) > 0.5 * len(keys)
    frozen_moved, frozen = _changed(start, model, 'backbone.clip_model.')
    assert frozen and frozen_moved == []
    assert _optimizer_params(runner) == {id(p) for p in model.parameters() if p.requires_grad}
    _check_metrics(runner.test())


@pytest.mark.slow
def test_distillation_trains_student_and_keeps_teacher(tmp_path, toy_root, tiny_checkpoints):
    cfg = _cfg('kd_fcclip-tiny_toy-inout-6.py', tmp_path, toy_root, tiny_checkpoints)
    runner, model = _train_and_test(cfg)
    start = _loaded_state(tiny_checkpoints['zero_shot'])
    teacher = {f'teacher.{k}': v for k, v in start.items()}
    moved_teacher, teacher_keys = _changed(teacher, model, 'teacher.')
    assert teacher_keys and moved_teacher == []
    moved, keys = _changed(start, model, 'transformer_decoder.')
    assert len(moved) > 0.5 * len(keys)
    assert not any(id(p) in _optimizer_params(runner) for p in model.teacher.parameters())
    assert float(runner.message_hub.get_scalar('train/loss_distill').current()) > 0
    _check_metrics(runner.test())


@pytest.mark.slow
def test_two_model_fusion_trains_both_members(tmp_path, toy_root, tiny_checkpoints):
    cfg = _cfg('fusion-entropy_fcclip-tiny_toy-inout-ftzs-6.py', tmp_path, toy_root, tiny_checkpoints,
               ann_file=None)  # the toy FTZS JSON is made by the study script; configuration 6 here
    runner, model = _train_and_test(cfg)
    for member, which in (('model_one', 'zero_shot'), ('model_two', 'finetuned')):
        start = {f'{member}.{k}': v for k, v in _loaded_state(tiny_checkpoints[which]).items()}
        moved, keys = _changed(start, model, f'{member}.transformer_decoder.')
        assert len(moved) > 0.5 * len(keys), member
        frozen_moved, frozen = _changed(start, model, f'{member}.backbone.clip_model.')
        assert frozen and frozen_moved == [], member
        assert all(id(p) in _optimizer_params(runner) for p in getattr(model, member).parameters()
                   if p.requires_grad)
    logged = {k.split('/', 1)[1] for k in runner.message_hub.log_scalars if k.startswith('train/')}
    assert {'m1.loss_ce', 'm2.loss_ce', 'comb.loss_ce', 'comb.d0.loss_dice'} <= logged
    _check_metrics(runner.test())


@pytest.mark.slow
def test_zero_shot_and_naive_merge_evaluate(tmp_path, toy_root, tiny_checkpoints):
    zs = OVSegRunner.from_cfg(_cfg('zero-shot_fcclip-tiny_toy-inout.py', tmp_path / 'zs', toy_root,
                                   tiny_checkpoints)).test()
    _check_metrics(zs)
    cfg = _cfg('naive_fcclip-tiny_toy-inout-6.py', tmp_path / 'naive', toy_root, tiny_checkpoints)
    runner = OVSegRunner.from_cfg(cfg)
    merged = runner.test()
    _check_metrics(merged)
    model = runner.model
    assert model._out_vocab.tolist() == [True] * 6 + [False] * 5  # ToyScenes: 6 things deleted, 5 stuff kept
    # the members really are the two checkpoints
    for member, which in (('finetuned', 'finetuned'), ('zero_shot', 'zero_shot')):
        key = 'transformer_decoder.query_feat.weight'
        torch.testing.assert_close(getattr(model, member).state_dict()[key],
                                   _loaded_state(tiny_checkpoints[which])[key])


@pytest.mark.slow
def test_two_model_fusion_under_dist_train_resumes(tmp_path, repo_root, toy_root, tiny_checkpoints):
    """tools/dist_train.sh, 2 CPU processes (gloo): the two-model wrapper trains under DDP, checkpoints both members
    and --resume continues from them."""
    from tests.tools.test_dist_train import run_dist_train
    opts = ['--cfg-options', f'model.model_one.checkpoint={tiny_checkpoints["zero_shot"]}',
            f'model.model_two.checkpoint={tiny_checkpoints["finetuned"]}',
            'train_dataloader.dataset.ann_file=None', f'train_dataloader.dataset.data_root={toy_root}',
            *[f'train_dataloader.dataset.generate.{k}={TOY_GENERATE[k]}' for k in ('num_train', 'num_val')],
            'train_dataloader.dataset.generate.min_things=1', 'train_dataloader.dataset.generate.max_things=4',
            'train_dataloader.batch_size=1',
            'train_dataloader.num_workers=0', 'train_dataloader.persistent_workers=False',
            'train_cfg.val_interval=100', 'default_hooks.checkpoint.interval=1', 'default_hooks.logger.interval=1']
    cfg = 'configs/inout_vocab/fusion-entropy_fcclip-tiny_toy-inout-ftzs-6.py'
    out = run_dist_train(repo_root, cfg, tmp_path, extra=[*opts, 'train_cfg.max_iters=1'])
    log = out.stdout + out.stderr
    assert out.returncode == 0, log[-4000:]
    assert 'GPU number: 2' in log and 'comb.loss_ce' in log
    first = torch.load(tmp_path / 'iter_1.pth', map_location='cpu', weights_only=True)['state_dict']
    assert any(k.startswith('model_one.') for k in first) and any(k.startswith('model_two.') for k in first)
    out = run_dist_train(repo_root, cfg, tmp_path, extra=['--resume', *opts, 'train_cfg.max_iters=2'])
    log = out.stdout + out.stderr
    assert out.returncode == 0, log[-4000:]
    assert 'resumed epoch: 0, iter: 1' in log
    second = torch.load(tmp_path / 'iter_2.pth', map_location='cpu', weights_only=True)['state_dict']
    key = 'model_two.transformer_decoder.query_feat.weight'
    assert not torch.equal(first[key], second[key])
