"""SEEM fine-tuning strategies (configs/seem_ft/_base_/strategy_*.py) on the tiny SEEM: the optimizer built by the
runner's constructor holds exactly the intended parameters, every one of them moves in two AdamW steps and every
other parameter stays bit-identical; adapter names contain ``.adapters.`` and never touch the pixel decoder's
``adapter_1..3``; trainable % per strategy; the LoRA variants; the batch-size check and evaluation at start."""
import re
from types import SimpleNamespace

import pytest
import torch
from mmengine.config import Config
from mmengine.structures import InstanceData

from ovseg.engine.optimizers import build_trainable_optim_wrapper
from ovseg.models.peft import configure_trainable
from ovseg.structures import SegDataSample
from projects.seem_ft.seem_ft import (
    EvaluateAtStartHook,
    TrainBatchSizeCheckHook,
    check_train_batch_size,
    count_trainable,
    groundings,
    strategy_summary,
)
from projects.seem_ft.seem_ft.run_options import BatchSizeError
from tests.projects.seem_ft.tiny_seem import CLASSES, IS_THING, build_tiny, tiny_cfg

BASE = 'configs/seem_ft/_base_/strategy_{}.py'
SPATIAL = ('mask_sptial_embed', 'spatial_embed', 'spatial_featured', 'pn_indicator')


def _in_decoder(n):
    return n.startswith('transformer_decoder.')


def _decoder_adapter(n):
    return _in_decoder(n) and '.adapters.' in n


def _backbone_adapter(n):
    return n.startswith('backbone.') and '.modulation.proj.adapters.' in n


def _full_decoder(n):
    return _in_decoder(n) and '.adapters.' not in n and n.split('.')[1] not in SPATIAL


def _lora(n, scopes):
    return any(n.startswith(s + '.') for s in scopes) and re.search(r'\.lora_[AB]\.', n) is not None


# strategy → the intended trainable set, written independently of the fragments' regexes
INTENDED = {
    'frozen-backbone-decoder-adapter': _decoder_adapter,
    'frozen-backbone-full-decoder': _full_decoder,
    'backbone-adapter-decoder-adapter': lambda n: _decoder_adapter(n) or _backbone_adapter(n),
    'backbone-adapter-full-decoder': lambda n: _full_decoder(n) or _backbone_adapter(n),
    'frozen-backbone-decoder-lora': lambda n: _lora(n, ['transformer_decoder']),
    'backbone-lora-decoder-lora': lambda n: _lora(n, ['transformer_decoder', 'backbone']),
    # + SEEM's spatial training: the whole decoder, spatial-only parameters included
    'frozen-backbone-full-decoder-spatial': lambda n: _in_decoder(n) and '.adapters.' not in n,
}


def _batch(model, size=64):
    imgs, samples = [], []
    for i in range(2):
        gen = torch.Generator().manual_seed(i)
        imgs.append(torch.randint(0, 255, (3, size, size), dtype=torch.uint8, generator=gen))
        ds = SegDataSample(metainfo=dict(img_shape=(size, size), ori_shape=(size, size)))
        masks = torch.zeros(2, size, size, dtype=torch.bool)
        masks[0, :size // 2] = True
        masks[1, size // 2:] = True
        ds.gt_instances = InstanceData(labels=torch.tensor([0, 2]), masks=masks)
        ds.gt_groundings = groundings(masks, ['the cat at the top', 'the sky below'], hashes=[0, 1])
        samples.append(ds)
    return model.data_preprocessor(dict(inputs=imgs, data_samples=samples), True)


def _strategy(name):
    cfg = Config.fromfile(BASE.format(name))
    return cfg.get('peft'), cfg.get('trainable_params')


def _prepared(name):
    if name.endswith('-spatial'):  # the spatial loop on, one click round (the memories get a gradient too)
        criterion = dict(tiny_cfg().model.criterion)
        criterion['losses'] = [*criterion['losses'], dict(type='SEEMSpatialLoss', match_points=256, num_points=256)]
        model = build_tiny(criterion=criterion, spatial_training=dict(min_iter=1, max_iter=1))
    else:
        model = build_tiny()
    model.set_vocabulary(CLASSES, IS_THING, 'train')
    peft, trainable = _strategy(name)
    configure_trainable(model, peft, trainable, log_table=False)
    return model


@pytest.mark.parametrize('name', list(INTENDED))
def test_exactly_the_intended_parameters_train(name):
    torch.manual_seed(0)
    model = _prepared(name)
    names = [n for n, _ in model.named_parameters()]
    intended = {n for n in names if INTENDED[name](n)}
    assert intended, name
    wrapper = build_trainable_optim_wrapper(model, dict(
        type='OptimWrapper', optimizer=dict(type='AdamW', lr=1e-2, weight_decay=0.05), clip_grad=dict(max_norm=5.0)))
    ids = {id(p) for g in wrapper.optimizer.param_groups for p in g['params']}
    in_optimizer = {n for n, p in model.named_parameters() if id(p) in ids}
    assert in_optimizer == intended
    assert {n for n, p in model.named_parameters() if p.requires_grad} == intended

    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    buffers = {n: b.detach().clone() for n, b in model.named_buffers()}
    model.train()
    for _ in range(2):
        losses = model(**_batch(model), mode='loss')
        wrapper.update_params(sum(v for k, v in losses.items() if 'loss' in k))
    after = dict(model.named_parameters())
    unchanged = sorted(n for n in intended if torch.equal(before[n], after[n].detach()))
    assert unchanged == [], f'{name}: trainable parameters that did not move: {unchanged[:6]}'
    moved = sorted(n for n in set(names) - intended if not torch.equal(before[n], after[n].detach()))
    assert moved == [], f'{name}: frozen parameters that moved: {moved[:6]}'
    assert all(torch.equal(buffers[n], b) for n, b in model.named_buffers())

    # adapters live in `adapters` containers; the pixel decoder's adapter_1..3 lateral convs stay original & frozen
    added = [n for n in names if '.adapters.' in n or '.lora_' in n]
    if 'adapter' in name:
        assert added and all('.adapters.' in n for n in added)
    assert not any('.adapters.' in n and re.search(r'adapter_\d', n) for n in names)
    laterals = [n for n in names if re.match(r'pixel_decoder\.adapter_[123]\.', n)]
    assert len(laterals) >= 3 and not any(after[n].requires_grad for n in laterals)
    trainable, total = count_trainable(model)
    assert trainable == sum(before[n].numel() for n in intended) and 0 < trainable < total


def test_adapter_layout_and_trainable_percent():
    dec = tiny_cfg().model.transformer_decoder
    model = _prepared('backbone-adapter-decoder-adapter')
    mods = dict(model.named_modules())
    layers = dec.dec_layers
    for kind in ('cross_attention', 'self_attention', 'ffn'):
        for i in range(layers):
            a = mods[f'transformer_decoder.transformer_{kind}_layers.{i}.adapters.default']
            assert (a.down.in_features, a.down.out_features, a.up.out_features) == (32, 16, 32)
            assert a.mode == 'serial' and torch.all(a.up.weight == 0)
    head = mods['transformer_decoder.mask_embed.adapters.default']
    assert head.mode == 'parallel' and (head.down.in_features, head.up.out_features) == (32, 32)
    blocks = [n for n in mods if n.endswith('modulation.proj.adapters.default')]
    assert len(blocks) == sum(tiny_cfg().model.backbone.depths)
    # trainable % per strategy (logged by the runner's table; the real-size numbers are in docs/seem_ft.md)
    percents = {}
    for name in INTENDED:
        peft, trainable = _strategy(name)
        s = strategy_summary(tiny_cfg().model, peft, trainable)
        percents[name] = s['percent']
        assert 0 < s['percent'] < 100 and s['total'] > 0
    assert percents['frozen-backbone-decoder-adapter'] < percents['backbone-adapter-decoder-adapter']
    assert percents['frozen-backbone-full-decoder'] < percents['backbone-adapter-full-decoder']
    assert percents['frozen-backbone-decoder-adapter'] < percents['frozen-backbone-full-decoder']


def test_adapters_start_from_the_pretrained_model():
    torch.manual_seed(0)
    base = build_tiny()
    adapted = build_tiny()
    peft, trainable = _strategy('backbone-adapter-decoder-adapter')
    configure_trainable(adapted, peft, trainable, log_table=False)
    for m in (base, adapted):
        m.set_vocabulary(CLASSES, IS_THING, 'test')
        m.eval()
    data = _batch(base)
    with torch.no_grad():
        fa = base.extract_feat(data['inputs'])
        fb = adapted.extract_feat(data['inputs'])
    # zero-initialised up-projections: the adapted model computes the pretrained one (up to the float rounding of
    # a different memory layout after the hook's addition)
    torch.testing.assert_close(fa['mask_features'], fb['mask_features'], rtol=1e-5, atol=1e-5)


def test_batch_size_check():
    assert check_train_batch_size(16, 2, 8) == 16
    assert check_train_batch_size(16, 2, 4, accumulation=2) == 16
    assert check_train_batch_size(None, 2, 3) == 6
    with pytest.raises(BatchSizeError) as err:
        check_train_batch_size(16, 2, 4)
    msg = str(err.value)
    for part in ('train_batch_size_total=16', 'train_batch_size_per_gpu=2', 'world_size=4', 'accumulative_counts=1',
                 '= 8', 'accumulative_counts=2'):
        assert part in msg
    with pytest.raises(BatchSizeError, match='train_dataloader.batch_size=4'):
        check_train_batch_size(16, 2, 8, loader_batch_size=4)
    # the hook reads the config keys, the dataloader, the world size and the optim wrapper's accumulation
    runner = SimpleNamespace(cfg=Config(dict(train_batch_size_total=4, train_batch_size_per_gpu=2)),
                             train_dataloader=SimpleNamespace(batch_size=2), world_size=1,
                             optim_wrapper=SimpleNamespace(_accumulative_counts=2))
    TrainBatchSizeCheckHook().before_train(runner)
    runner.world_size = 2
    with pytest.raises(BatchSizeError, match='world_size=2'):
        TrainBatchSizeCheckHook().before_train(runner)


def test_evaluate_at_start_hook():
    calls = []
    runner = SimpleNamespace(cfg=Config(dict(evaluate_at_start=True)), iter=0,
                             val_loop=SimpleNamespace(run=lambda: calls.append(1)))
    EvaluateAtStartHook().before_train(runner)
    assert calls == [1]
    EvaluateAtStartHook(enabled=False).before_train(runner)
    runner.cfg = Config(dict())
    EvaluateAtStartHook().before_train(runner)
    assert calls == [1]
    runner.cfg, runner.val_loop = Config(dict(evaluate_at_start=True)), None
    with pytest.raises(ValueError, match='validation loop'):
        EvaluateAtStartHook().before_train(runner)


def test_custom_recipe_reads_the_converter_output(tmp_path):
    """The real configs' datasets and pipelines on the colour-mask converter's output (user data, end to end)."""
    from ovseg.registry import DATASETS
    from tests.projects.seem_ft.seem_fixtures import convert_fixture
    out = convert_fixture(tmp_path)
    cfg = Config.fromfile('configs/seem_ft/seem-frozen-backbone-decoder-adapter_focalt_8xb2-50e_custom.py')
    assert cfg.train_dataloader.batch_size == cfg.train_batch_size_per_gpu == 2 and cfg.train_batch_size_total == 16
    assert cfg.model.test_cfg.panoptic_on and not cfg.model.test_cfg.instance_on
    assert cfg.param_scheduler[0].milestones == [44, 48] and cfg.optim_wrapper.optimizer.lr == 1e-4
    assert cfg.load_from == 'checkpoints/seem_focalt_v1_ovseg.pth'
    prefix = dict(img=str(tmp_path / 'images'), seg='panoptic_train/', sem_seg='panoptic_semseg_train/')
    files = dict(data_root=str(out), ann_file='panoptic_train.json', grounding_file='grounding_train.json')
    train = dict(cfg.train_dataloader.dataset, **files, data_prefix=prefix)
    train['pipeline'][3]['target_size'] = train['pipeline'][4]['crop_size'] = (32, 32)
    sample = DATASETS.build(train)[0]
    assert tuple(sample['inputs'].shape[-2:]) == (32, 32) and 'gt_groundings' in sample['data_samples']
    val = DATASETS.build(dict(cfg.val_dataloader.dataset, **files, data_prefix=prefix))
    assert val[0]['data_samples'].gt_panoptic_seg is not None
    ref = DATASETS.build(dict(cfg.test_dataloader.dataset, **files, data_prefix=dict(img=prefix['img'],
                                                                                     seg='panoptic_train/')))
    assert ref[0]['data_samples'].metainfo['expressions']


def test_every_leaf_uses_the_strategy_its_name_says(repo_root):
    leaves = sorted((repo_root / 'configs/seem_ft').glob('seem-*_custom.py')) + sorted(
        (repo_root / 'configs/seem_ft').glob('seem_tiny_toy-*-*.py'))
    names = {p.name for p in leaves}
    for bb in ('focalt', 'focall'):
        for s in list(INTENDED)[:4]:
            assert f'seem-{s}_{bb}_8xb2-50e_custom.py' in names
    for s in INTENDED:
        assert f'seem_tiny_toy-{s}.py' in names
    for path in leaves:
        strategy = re.match(r'seem[-_](?:tiny_toy-)?([a-z-]+?)(?:_focal[tl]_8xb2-50e_custom)?\.py$', path.name)[1]
        cfg = Config.fromfile(str(path))
        peft, trainable = _strategy(strategy)
        assert (cfg.get('peft'), cfg.get('trainable_params')) == (peft, trainable), path.name
        # the spatial loop: its loss term, and DDP told that the memories sit out 0-round steps
        assert bool(cfg.model.get('spatial_training')) == strategy.endswith('-spatial') == bool(
            cfg.get('find_unused_parameters')), path.name
        assert cfg.load_from, path.name
