"""OVSegRunner on the tiny FC-CLIP: the declared trainable set is exactly what the optimizer holds and trains.

Two optimizer steps on in-memory ToyScenes; everything not declared stays bit-identical, the table logged at
start-up reports the numbers computed here independently.
"""
import copy
import re

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope

import ovseg.engine  # noqa: F401
import ovseg.models  # noqa: F401
import tests.helpers.tiny_scenes  # noqa: F401  (registers TinyScenesInMemory)
from ovseg.engine import OVSegRunner
from ovseg.models.peft import parameter_table

CONFIG = 'configs/fcclip/fcclip_tiny_toy-scenes.py'
DECODER_LAYERS = r'(.*\.)?transformer_(self_attention|cross_attention|ffn)_layers\.\d+'


def _cfg(repo_root, work_dir, **extra):
    cfg = Config.fromfile(str(repo_root / CONFIG))
    cfg.work_dir = str(work_dir)
    cfg.train_dataloader = dict(batch_size=2, num_workers=0, persistent_workers=False,
                                sampler=dict(type='ResumableInfiniteSampler', shuffle=True, seed=0),
                                dataset=dict(type='TinyScenesInMemory', num=4, size=(64, 64)))
    for key in ('val_dataloader', 'val_evaluator', 'val_cfg', 'test_dataloader', 'test_evaluator', 'test_cfg'):
        cfg[key] = None
    cfg.train_cfg = dict(type='ResumableIterBasedTrainLoop', max_iters=2, val_interval=100)
    cfg.param_scheduler = [dict(type='ConstantLR', factor=1.0, by_epoch=False)]
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', interval=100, by_epoch=False)
    cfg.model.criterion.matcher.num_points = 256
    cfg.model.criterion.num_points = 256
    cfg.log_level = 'INFO'
    cfg.merge_from_dict(extra)
    return cfg


def _train_and_check(runner, expected_trainable):
    model = runner.model
    start = {n: p.detach().clone() for n, p in model.named_parameters()}
    declared = {n for n, p in model.named_parameters() if p.requires_grad}
    assert declared == expected_trainable
    runner.train()
    held = {id(p) for g in runner.optim_wrapper.optimizer.param_groups for p in g['params']}
    names = {n for n, p in model.named_parameters() if id(p) in held}
    assert names == declared  # the optimizer holds exactly the declared set
    for n, p in model.named_parameters():
        if n in declared:
            assert not torch.equal(p, start[n]), f'{n} was declared trainable but did not change'
        else:
            assert torch.equal(p, start[n]), f'{n} is frozen but changed'


def _logged_table(work_dir):
    log = next(work_dir.rglob('*.log')).read_text()
    m = re.search(r'Trainable parameters: ([\d,]+) of ([\d,]+) \(([\d.]+) %\)', log)
    rows = {r[0]: (int(r[1].replace(',', '')), int(r[2].replace(',', '')), float(r[4]))
            for r in re.findall(r'^ *([\w.()]+) +([\d,]+) +([\d,]+) +([\d.]+) +([\d.]+)$', log, re.M)}
    return int(m[1].replace(',', '')), int(m[2].replace(',', '')), float(m[3]), rows


@pytest.mark.slow
def test_decoder_adapters_train_alone_through_the_runner(repo_root, tmp_path):
    peft = [dict(type='BottleneckAdapters', targets=DECODER_LAYERS, dim=64)]  # freeze_base: the whole model
    runner = OVSegRunner.from_cfg(_cfg(repo_root, tmp_path, peft=peft))
    adapters = {n for n, _ in runner.model.named_parameters() if '.adapters.' in n}
    assert len(adapters) == 9 * 4  # 3 layers x (self, cross, ffn) x (down, up) x (weight, bias)
    _train_and_check(runner, adapters)
    # 9 adapters 64 -> 32 -> 64: 9 * (64*32 + 32 + 32*64 + 64) parameters
    trainable, total, pct, rows = _logged_table(tmp_path)
    assert trainable == 9 * (64 * 32 + 32 + 32 * 64 + 64) == 37728
    assert total == sum(p.numel() for p in runner.model.parameters())
    assert pct == pytest.approx(100 * trainable / total, abs=0.005)
    assert rows['backbone'][0] == 0 and rows['transformer_decoder'][0] == trainable
    assert rows['transformer_decoder.transformer_ffn_layers'][0] == 3 * 4192
    table, _, _ = parameter_table(runner.model)
    assert {r.name: (r.trainable, r.total) for r in table} == {k: v[:2] for k, v in rows.items()}


@pytest.mark.slow
def test_declared_trainable_params_are_exactly_what_trains(repo_root, tmp_path):
    trainable_params = dict(train=[r'^transformer_decoder\.class_head\.', r'^pixel_decoder\.'],
                            freeze=[r'\.norm\d*\.', r'input_proj'])
    runner = OVSegRunner.from_cfg(_cfg(repo_root, tmp_path, trainable_params=trainable_params))
    expected = {n for n, _ in runner.model.named_parameters()
                if (n.startswith('transformer_decoder.class_head.') or n.startswith('pixel_decoder.'))
                and not re.search(r'\.norm\d*\.|input_proj', n)}
    assert 0 < len(expected) < sum(1 for _ in runner.model.parameters())
    _train_and_check(runner, expected)


def test_bad_declarations_fail_before_training(repo_root, tmp_path):
    with pytest.raises(ValueError, match=r"pattern 'no_such_module' matches no parameter name"):
        OVSegRunner.from_cfg(_cfg(repo_root, tmp_path, trainable_params=dict(train=['no_such_module'])))
    with pytest.raises(ValueError, match=r"unknown keys \['trian'\]"):
        OVSegRunner.from_cfg(_cfg(repo_root, tmp_path, trainable_params=dict(trian=['x'])))


def test_decoder_adapters_leave_the_tiny_fcclip_unchanged_at_init(repo_root, tmp_path):
    """Same weights, same batch: the adapted FC-CLIP computes exactly the base model's losses."""
    from ovseg.models.peft import apply_peft
    from ovseg.registry import MODELS
    from tests.helpers.tiny_scenes import TinyScenesInMemory

    init_default_scope('ovseg')
    cfg = _cfg(repo_root, tmp_path)
    torch.manual_seed(0)
    base = MODELS.build(cfg.model)
    adapted = MODELS.build(cfg.model)
    adapted.load_state_dict(base.state_dict())
    # freeze_base=False keeps requires_grad as in the base model: PyTorch picks attention kernels by whether
    # inputs need gradients, which alone moves outputs by ~1e-6
    assert apply_peft(adapted, [dict(type='BottleneckAdapters', targets=DECODER_LAYERS, dim=64,
                                     freeze_base=False)])
    data = TinyScenesInMemory(num=2, size=(64, 64))
    meta = data.metainfo
    losses = []
    for model in (base, adapted):
        model.set_vocabulary(meta['class_synonyms'], meta['is_thing'], split='train')
        samples = copy.deepcopy(data.samples)  # the preprocessor pads the samples' masks in place
        batch = model.data_preprocessor(dict(inputs=[s['inputs'] for s in samples],
                                             data_samples=[s['data_samples'] for s in samples]), True)
        torch.manual_seed(1)  # the criterion samples points at random
        losses.append(model(**batch, mode='loss'))
    assert losses[0].keys() == losses[1].keys() and len(losses[0]) > 3
    for k in losses[0]:
        assert torch.equal(losses[0][k], losses[1][k]), k
