"""The mask-caption loop: every loss reaches the trainable groups (and nothing else moves), a batch whose captions
are all rejected still trains stage 2, accepted captions train the caption LM loss, the EMA teacher captions, and
batched generation gives the per-sample captions."""
from pathlib import Path

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope

import projects.sa2va_sft.sa2va_sft  # noqa: F401  (registers the project)
from ovseg.engine.trainable_ema import TrainableEMA
from ovseg.models.peft import configure_trainable
from ovseg.registry import DATASETS, MODELS
from projects.sa2va_sft.sa2va_sft.mask_caption import left_pad, mask_iou

CONFIG = Path(__file__).resolve().parents[3] / 'configs/sa2va_sft/sa2va_tiny_toy-referring.py'
TILE, SAM = 56, 256


@pytest.fixture(scope='module')
def setup(tmp_path_factory):
    init_default_scope('ovseg')
    cfg = Config.fromfile(str(CONFIG))
    root = str(tmp_path_factory.mktemp('mc') / 'toy')
    gen = dict(num_train=6, num_val=2, size=(128, 128), seed=0, novel_classes=[])

    def dataset(keep_expression):
        pipe = [dict(type='LoadImage'), dict(type='LoadReferringAnnotations'),
                dict(type='ReferringToRegionPair', keep_expression=keep_expression),
                dict(type='FormatMaskCaptionInputs', image_size=TILE, max_num=1, use_thumbnail=False,
                     sam_image_size=SAM),
                dict(type='PackMaskCaptionInputs')]
        return DATASETS.build(dict(type='ToyReferringDataset', data_root=root, split='train', group='ref',
                                   generate=gen, pipeline=pipe))

    return cfg, dataset(True), dataset(False)


def _model(cfg, **kw):
    torch.manual_seed(0)
    model = MODELS.build(dict(cfg.model, type='MaskCaptionSa2VA', max_caption_tokens=6, **kw))
    trainable = configure_trainable(model, cfg.peft, cfg.trainable_params, log_table=False)
    return model, trainable


def _batch(model, datasets_and_indices):
    items = [ds[i] for ds, i in datasets_and_indices]
    return model.data_preprocessor(dict(inputs=[b['inputs'] for b in items],
                                        data_samples=[b['data_samples'] for b in items]), True)


def _train(model, data, steps=2, lr=1e-2):
    rows = ('embed_tokens', 'lm_head')
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    opt = torch.optim.AdamW([dict(params=[p for n, p in named if not any(r in n for r in rows)]),
                             dict(params=[p for n, p in named if any(r in n for r in rows)], weight_decay=0.0)],
                            lr=lr, weight_decay=0.05)
    model.train()
    history = []
    for _ in range(steps):
        losses = model(**data, mode='loss')
        history.append({k: float(v) for k, v in losses.items()})
        opt.zero_grad()
        sum(v for k, v in losses.items() if 'loss' in k).backward()
        opt.step()
        if getattr(model, 'ema_teacher', None) is not None:
            model.ema_teacher.update()
    return history


GROUPS = {'lora_A': '.lora_A.', 'lora_B': '.lora_B.', 'mlp1': 'mlp1.', 'text_hidden_fcs': 'text_hidden_fcs.',
          'mask_decoder': 'sam_mask_decoder.'}
NO_GRAD_HEADS = ('iou_prediction_head', 'pred_obj_score_head', 'output_hypernetworks_mlps')


def _changed(before, model):
    after = model.state_dict()
    return {k for k in before if not torch.equal(before[k], after[k])}


def test_every_trainable_group_moves_and_frozen_weights_stay(setup):
    cfg, with_text, without_text = setup
    model, trainable = _model(cfg, accept_iou=0.0)  # every caption accepted: all three losses act
    model.ema_teacher = TrainableEMA(model, decay=0.999)
    data = _batch(model, [(with_text, 0), (without_text, 1), (without_text, 2)])
    before = {k: v.detach().clone() for k, v in model.state_dict().items()}
    history = _train(model, data)
    for h in history:
        assert {'loss_mask', 'loss_dice', 'loss_iou', 'loss_answer', 'loss_caption'} <= set(h)
        assert all(np.isfinite(v) for v in h.values())
        assert h['loss_caption'] > 0  # the ground-truth expression is always an SFT target
    # accept_iou 0: every non-empty caption is accepted (an empty one is never a target)
    last = model.last_stage1
    assert set(last['accepted']) == {1, 2}
    assert all(last['accepted'][i] == bool(last['captions'][i]) for i in (1, 2))
    assert history[-1]['caption_accept'] == sum(last['accepted'].values()) / 2
    changed = _changed(before, model)
    for name, part in GROUPS.items():
        keys = [k for k in trainable if part in k and not any(h in k for h in NO_GRAD_HEADS)]
        assert keys and all(k in changed for k in keys), (name, [k for k in keys if k not in changed][:3])
    assert [k for k in changed if k not in trainable] == []
    rows = model._old_vocab
    for emb in [k for k in trainable if k.endswith(('embed_tokens.weight', 'lm_head.weight'))]:
        assert torch.equal(before[emb][:rows], model.state_dict()[emb][:rows]), emb


def test_all_rejected_still_trains_stage_two(setup):
    cfg, _, without_text = setup
    model, trainable = _model(cfg, accept_iou=1.0, captioner='student')
    data = _batch(model, [(without_text, 0), (without_text, 3)])
    before = {k: v.detach().clone() for k, v in model.state_dict().items()}
    model.train()
    losses = model(**data, mode='loss')
    assert float(losses['caption_accept']) == 0.0 and float(losses['loss_caption']) == 0.0
    assert not any(model.last_stage1['accepted'].values())
    assert float(losses['loss_mask']) > 0 and float(losses['loss_iou']) > 0
    loss = sum(v for k, v in losses.items() if 'loss' in k)
    loss.backward()
    fcs = model.text_hidden_fcs[0].weight.grad
    assert fcs is not None and fcs.abs().sum() > 0
    dec = [p.grad for n, p in model.named_parameters() if 'sam_mask_decoder.transformer' in n]
    assert any(g is not None and g.abs().sum() > 0 for g in dec)
    lora = [p.grad for n, p in model.named_parameters() if '.lora_B.' in n]
    assert any(g is not None and g.abs().sum() > 0 for g in lora)  # the stage-2 answer / [SEG] path
    _train(model, data, steps=1)
    changed = _changed(before, model)
    assert any('text_hidden_fcs' in k for k in changed) and any('sam_mask_decoder' in k for k in changed)
    assert [k for k in changed if k not in trainable] == []


def test_accepted_only_stage_two_and_caption_targets(setup):
    cfg, with_text, without_text = setup
    model, _ = _model(cfg, accept_iou=1.0, captioner='student', stage2_captions='accepted')
    data = _batch(model, [(without_text, 0), (without_text, 1)])
    model.train()
    losses = model(**data, mode='loss')  # nothing accepted, nothing with a text: both student losses are 0
    assert float(losses['loss_mask']) == 0.0 and float(losses['loss_caption']) == 0.0
    sum(v for k, v in losses.items() if 'loss' in k).backward()  # still a graph (DDP: every rank steps)
    data = _batch(model, [(with_text, 0)])
    losses = model(**data, mode='loss')  # a ground-truth text trains both stage 2 and the caption LM
    assert float(losses['loss_mask']) > 0 and float(losses['loss_caption']) > 0
    assert model.last_stage1['captions'] == {}  # no generation for samples with a text


def test_ema_teacher_captions(setup):
    cfg, _, without_text = setup
    model, _ = _model(cfg, accept_iou=0.5)
    data = _batch(model, [(without_text, 0), (without_text, 1)])
    with pytest.raises(RuntimeError, match='TrainableEMAHook'):
        model(**data, mode='loss')
    ema = TrainableEMA(model, decay=0.999)
    model.ema_teacher = ema
    g = torch.Generator().manual_seed(1)
    for name in ema.shadow:
        if 'lora_B' in name:  # a teacher that differs from the student
            ema.shadow[name].add_(torch.randn(ema.shadow[name].shape, generator=g))
    model.train()
    model(**data, mode='loss')
    teacher = model.last_stage1['captions']
    tiles, tiles2, _ = model.split_pair_inputs(data['inputs'])
    prompts = [ds.prompt_masks[0] for ds in data['data_samples']]
    with torch.no_grad(), ema.swapped():
        expect = model.generate_captions(model.pair_visual_tokens(tiles, tiles2)[0], prompts)
    with torch.no_grad():
        model.eval()
        student = model.generate_captions(model.pair_visual_tokens(tiles, tiles2)[0], prompts)
    assert [teacher[0], teacher[1]] == expect
    assert expect != student  # the perturbed teacher says something else: the captions did come from it


def test_batched_generation_matches_one_by_one(setup):
    cfg, _, without_text = setup
    model, _ = _model(cfg)
    model.eval()
    data = _batch(model, [(without_text, i) for i in range(3)])
    tiles, tiles2, _ = model.split_pair_inputs(data['inputs'])
    prompts = [ds.prompt_masks[0] for ds in data['data_samples']]
    with torch.no_grad():
        vis = model.pair_visual_tokens(tiles, tiles2)[0]
        batched = model.generate_captions(vis, prompts)
        single = [model.generate_captions([v], [p])[0] for v, p in zip(vis, prompts)]
    assert batched == single


def test_predict_resegments_from_its_caption(setup):
    cfg, with_text, _ = setup
    model, _ = _model(cfg)
    model.eval()
    data = _batch(model, [(with_text, 0), (with_text, 1)])
    out = model(**data, mode='predict')
    for ds in out:
        assert ds.pred_masks.shape == ds.gt_masks.shape and ds.pred_masks.dtype == torch.bool
        assert isinstance(ds.metainfo['pred_texts'][0], str)
        assert ds.metainfo['reference_expressions']


def test_mask_iou_and_left_pad():
    logits = torch.full((2, 4, 4), -1.0)
    logits[0, :2] = 1.0  # top half
    gt = torch.zeros(2, 8, 8, dtype=torch.bool)
    gt[0, :8, :4] = True  # left half (resized to 4x4: left 2 columns)
    assert torch.allclose(mask_iou(logits, gt), torch.tensor([4 / 12, 1.0]))  # empty vs empty counts as 1
    a, b = torch.ones(2, 3), torch.full((4, 3), 2.0)
    batch, mask = left_pad([a, b])
    assert batch.shape == (2, 4, 3) and mask.tolist() == [[0, 0, 1, 1], [1, 1, 1, 1]]
    assert torch.equal(batch[0, 2:], a) and torch.equal(batch[0, :2], torch.zeros(2, 3))


def test_region_pair_errors(setup):
    from projects.sa2va_sft.sa2va_sft.mask_caption_transforms import FormatMaskCaptionInputs, ReferringToRegionPair
    img = np.zeros((8, 8, 3), np.uint8)
    fmt = FormatMaskCaptionInputs(image_size=TILE, max_num=1, use_thumbnail=False, sam_image_size=SAM)
    with pytest.raises(ValueError, match="record 'r7'.*region_mask2 is empty"):
        fmt(dict(img=img, img2=img, region_mask=np.ones((8, 8), bool), region_mask2=np.zeros((8, 8), bool),
                 record_id='r7', source='sav'))
    with pytest.raises(ValueError, match=r'region_mask is \(4, 4\) but its image is \(8, 8\)'):
        fmt(dict(img=img, img2=img, region_mask=np.ones((4, 4), bool), region_mask2=np.ones((8, 8), bool)))
    with pytest.raises(ValueError, match='must describe one region'):
        ReferringToRegionPair()(dict(img=img, img_path='x.jpg', gt_masks=np.ones((2, 8, 8), bool),
                                     expressions=['a', 'b'], ann_ids=[1, 2]))
