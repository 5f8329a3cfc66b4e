"""SEEM segmentor on a tiny random model: loss names / weights, a training step (finite, grads reach the decoder,
text encoder frozen), class scores = SEEM's formula, vocabulary checks, panoptic / referring / spatial inference."""
import math

import numpy as np
import pytest
import torch
from mmengine.structures import InstanceData

from ovseg.evaluation.metrics.referring_metric import ReferringSegMetric
from ovseg.structures import SegDataSample
from projects.seem_ft.seem_ft import SEEM_CRITERION, SEEMGroundingLoss, groundings
from tests.projects.seem_ft.tiny_seem import CLASSES, IS_THING, build_tiny, tiny_cfg


@pytest.fixture(scope='module')
def model():
    m = build_tiny()
    m.set_vocabulary(CLASSES, IS_THING, 'train')
    m.set_vocabulary(CLASSES, IS_THING, 'test')
    return m


def _batch(model, with_grounding=(True, False), size=64, train=True):
    imgs, samples = [], []
    for i, g in enumerate(with_grounding):
        imgs.append(torch.randint(0, 255, (3, size, size - 8 * i), dtype=torch.uint8))
        ds = SegDataSample(metainfo=dict(img_shape=(size, size - 8 * i), ori_shape=(size, size - 8 * i)))
        masks = torch.zeros(2, size, size - 8 * i, dtype=torch.bool)
        masks[0, :size // 2] = True
        masks[1, size // 2:] = True
        ds.gt_instances = InstanceData(labels=torch.tensor([0, 2]), masks=masks)
        if g:
            ds.gt_groundings = groundings(masks, ['the cat at the top', 'the sky below'], hashes=[0, 1])
        samples.append(ds)
    return model.data_preprocessor(dict(inputs=imgs, data_samples=samples), train)


def test_criterion_names_and_weights(model):
    crit = model.criterion
    assert crit.loss_weights == {'loss_ce': 2.0, 'loss_mask': 5.0, 'loss_dice': 5.0, 'loss_grounding': 1.0}
    ce = crit.losses[0]
    assert ce.eos_coef == 0.1 and crit.deep_supervision
    g = [t for t in crit.losses if isinstance(t, SEEMGroundingLoss)][0]
    assert g.loss_names == {'loss_grounding_ce': 0.4, 'loss_grounding_bce': 1.0, 'loss_grounding_dice': 1.0}
    assert g.task_weights == {'text': 2.0, 'class': 0.5}
    # the full-size constant carries SEEM's values
    assert SEEM_CRITERION['num_points'] == 12544 and SEEM_CRITERION['oversample_ratio'] == 3.0
    assert SEEM_CRITERION['importance_sample_ratio'] == 0.75
    assert [(t['type'], t.get('loss_weight')) for t in SEEM_CRITERION['losses'][:3]] == [
        ('ClassCELoss', 2.0), ('MaskBCELoss', 5.0), ('MaskDiceLoss', 5.0)]


def test_training_step(model):
    model.train()
    model.zero_grad()
    data = _batch(model)
    losses = model(**data, mode='loss')
    names = {'loss_ce', 'loss_mask', 'loss_dice', 'loss_grounding_ce', 'loss_grounding_bce', 'loss_grounding_dice'}
    assert names <= set(losses)
    layers = model.transformer_decoder.num_layers
    assert {f'd{i}.{n}' for i in range(layers) for n in names} <= set(losses)  # deep supervision on 3+1 preds
    assert all(torch.isfinite(v) for v in losses.values())
    assert losses['loss_grounding_ce'].item() > 0 and losses['loss_grounding_bce'].detach() > 0
    sum(losses.values()).backward()
    dec = model.transformer_decoder
    for name in ('class_embed', 'query_feat.weight', 'mask_embed.layers.2.weight',
                 'transformer_self_attention_layers.0.self_attn.in_proj_weight'):
        grad = dict(dec.named_parameters())[name].grad
        assert grad is not None and grad.abs().sum() > 0, name
    assert all(not p.requires_grad and p.grad is None for p in model.text_encoder.parameters())
    assert model.backbone.patch_embed.proj.weight.grad is not None


def test_training_without_groundings(model):
    model.train()
    losses = model(**_batch(model, (False, False)), mode='loss')
    assert losses['loss_grounding_ce'].detach() == 0.0 and torch.isfinite(losses['loss_ce'])
    assert not any('spatial' in k for k in losses)  # spatial training is off unless configured


def test_class_scores_follow_seems_formula(model):
    """pred_logits = exp(logit_scale) · normalize(q @ class_embed) @ tᵀ, t = template-averaged, normalised class
    embeddings with 'background' last (SEEM compute_similarity / get_text_embeddings(is_eval=True))."""
    model.eval()
    enc = model.text_encoder
    with torch.no_grad():
        enc.logit_scale.fill_(math.log(20.0))
        emb = model.class_embeddings('test')
        per = []
        for name in CLASSES + ['background']:
            e = enc.encode_sentences([t.format(name) for t in enc.templates])
            e = e / (e.norm(dim=-1, keepdim=True) + 1e-7)
            m = e.mean(0)
            per.append(m / m.norm())
        torch.testing.assert_close(emb, torch.stack(per))
        data = _batch(model, (False,), train=False)
        feats = model.extract_feat(data['inputs'])
        out = model.decode(feats, 'test')
        v = out['pred_captions']
        by_hand = 20.0 * (v / (v.norm(dim=-1, keepdim=True) + 1e-7)) @ emb.t()
        torch.testing.assert_close(out['pred_logits'], by_hand, rtol=1e-4, atol=1e-4)
        assert out['pred_logits'].shape[-1] == len(CLASSES) + 1
        enc.logit_scale.fill_(0.0)


def test_vocabulary_from_data_and_num_classes_check():
    m = build_tiny(criterion=False, num_classes=2)
    with pytest.raises(ValueError, match='num_classes=2 but the training data has 3 classes'):
        m.set_vocabulary(CLASSES, IS_THING, 'train')
    m.set_vocabulary(['a', 'b'], [True, False], 'train')
    m.set_vocabulary(CLASSES, IS_THING, 'test')  # open-vocabulary evaluation: any test vocabulary


def test_panoptic_predict(model):
    model.eval()
    data = _batch(model, (False, False), train=False)
    with torch.no_grad():
        out = model(**data, mode='predict')
    assert out[0].pred_panoptic_seg.data.shape == (1, 64, 64)
    assert out[1].pred_sem_seg.data.shape == (1, 64, 56)


def test_grounding_predict_feeds_the_referring_metric(model):
    model.eval()
    imgs, samples = [], []
    for n in (2, 1):
        imgs.append(torch.randint(0, 255, (3, 40, 52), dtype=torch.uint8))
        ds = SegDataSample(metainfo=dict(img_shape=(40, 52), ori_shape=(80, 104),
                                          expressions=['the dog', 'a cat on the left'][:n]))
        ds.gt_masks = torch.zeros(n, 80, 104, dtype=torch.bool)
        ds.gt_masks[:, :40] = True
        samples.append(ds)
    data = model.data_preprocessor(dict(inputs=imgs, data_samples=samples), False)
    with torch.no_grad():
        out = model(**data, mode='predict')
    assert out[0].pred_masks.shape == (2, 80, 104) and out[0].pred_masks.dtype == torch.bool
    assert out[1].pred_masks.shape == (1, 80, 104)
    metric = ReferringSegMetric()
    metric.process({}, [o.to_dict() for o in out])
    res = metric.compute_metrics(metric.results)
    assert set(res) == {'cIoU', 'gIoU'} and all(0 <= v <= 100 for v in res.values())


def test_predict_spatial_point_and_box(model):
    model.eval()
    img = np.random.RandomState(0).randint(0, 255, (50, 70, 3), dtype=np.uint8)
    masks = model.predict_spatial(img, points=[(10, 12)], boxes=[(5, 5, 30, 40)],
                                  generator=torch.Generator().manual_seed(0))
    assert masks.shape == (2, 50, 70) and masks.dtype == torch.bool
    logits = model.predict_spatial(torch.from_numpy(img).permute(2, 0, 1), points=[[(10, 12), (20, 20)]],
                                   return_logits=True)
    assert logits.shape == (1, 50, 70) and logits.dtype == torch.float32
    again = model.predict_spatial(img, points=[[(10, 12), (20, 20)]], prev_mask=logits)
    assert again.shape == (1, 50, 70)
    scribble = np.zeros((50, 70), dtype=np.uint8)
    scribble[20, 5:60] = 255
    assert model.predict_spatial(img, scribbles=[scribble]).shape == (1, 50, 70)
    with pytest.raises(ValueError, match='outside'):
        model.predict_spatial(img, points=[(100, 5)])
    with pytest.raises(ValueError, match='at least one'):
        model.predict_spatial(img)
    assert model.predict_grounding(img, ['the red thing', 'sky']).shape == (2, 50, 70)


def test_instance_predict_feeds_the_panoptic_derived_mask_ap(model):
    """``instance_on`` (the leaves' switch) gives ``pred_instances`` that InstanceMaskAPMetric scores against the
    thing segments of the panoptic GT, the custom-data protocol (colour masks do not overlap)."""
    from ovseg.evaluation.metrics.instance_ap_metric import InstanceMaskAPMetric
    inst_model = build_tiny(test_cfg=dict(tiny_cfg().model.test_cfg, instance_on=True))
    inst_model.set_vocabulary(CLASSES, IS_THING, 'test')
    inst_model.eval()
    data = _batch(inst_model, (False,), train=False)
    with torch.no_grad():
        pred = inst_model(**data, mode='predict')[0]
    masks, labels = pred.pred_instances.masks, pred.pred_instances.labels
    assert masks.shape[1:] == (64, 64) and len(masks) == len(labels) == len(pred.pred_instances.scores) > 0
    assert all(IS_THING[c] for c in labels.tolist())  # panoptic_on: things only, as MaskFormer's instance_inference
    pan = torch.zeros(1, 64, 64, dtype=torch.int64)
    pan[0, :32], pan[0, 32:] = 1, 2  # segment 1: a cat (thing), segment 2: sky (stuff)
    segments = [dict(id=1, category_id=0, iscrowd=0), dict(id=2, category_id=2, iscrowd=0)]

    def score(instances):
        metric = InstanceMaskAPMetric()
        metric.dataset_meta = dict(classes=CLASSES, thing_classes=[c for c, t in zip(CLASSES, IS_THING) if t])
        sample = dict(img_id=0, gt_panoptic_seg=dict(data=pan), segments_info=segments, pred_instances=instances)
        metric.process(None, [sample])
        return metric.compute_metrics(metric.results)

    got = score(dict(masks=masks, labels=labels, scores=pred.pred_instances.scores))
    assert 0.0 <= got['mAP'] <= 100.0
    perfect = score(dict(masks=pan[:, :, :] == 1, labels=torch.tensor([0]), scores=torch.tensor([0.9])))
    assert perfect['mAP'] == pytest.approx(100.0) and perfect['AP50'] == pytest.approx(100.0)
    wrong = score(dict(masks=pan == 2, labels=torch.tensor([0]), scores=torch.tensor([0.9])))
    assert wrong['mAP'] == pytest.approx(0.0)

    from ovseg.evaluation.metrics.panoptic_metric import PanopticMetric
    for metric, switch in ((InstanceMaskAPMetric(), 'instance_on'), (PanopticMetric(), 'panoptic_on')):
        metric.dataset_meta = dict(classes=CLASSES, thing_classes=['cat', 'dog'])
        with pytest.raises(KeyError, match=switch):  # the evaluator is on, the model's prediction is off
            metric.process(None, [dict(img_id=0, gt_panoptic_seg=dict(data=pan), segments_info=segments)])


def test_custom_leaves_derive_evaluators_from_the_switches(tmp_path, repo_root):
    import shutil

    from mmengine.config import Config
    leaf = 'seem_ft/seem-frozen-backbone-decoder-adapter_focall_8xb2-50e_custom.py'
    cfg = Config.fromfile(str(repo_root / 'configs' / leaf))
    assert [m['type'] for m in cfg.val_evaluator] == ['PanopticMetric', 'SemSegMetric']
    assert cfg.default_hooks.checkpoint.save_best == 'panoptic/PQ' and cfg.default_hooks.checkpoint.interval == 5
    assert (cfg.model.test_cfg.panoptic_on, cfg.model.test_cfg.instance_on, cfg.model.num_classes) == (True, False,
                                                                                                        None)
    # the recipe's switches flipped: every leaf's model outputs, evaluators and best checkpoint follow
    shutil.copytree(repo_root / 'configs', tmp_path / 'configs')
    recipe = tmp_path / 'configs/seem_ft/_base_/seem_custom_recipe.py'
    text = recipe.read_text()
    for a, b in (('panoptic_on = True', 'panoptic_on = False'), ('instance_on = False', 'instance_on = True'),
                 ('num_classes = None', 'num_classes = 7')):
        assert a in text
        text = text.replace(a, b)
    recipe.write_text(text)
    cfg = Config.fromfile(str(tmp_path / 'configs' / leaf))
    assert (cfg.model.test_cfg.panoptic_on, cfg.model.test_cfg.instance_on, cfg.model.num_classes) == (False, True, 7)
    assert [m['type'] for m in cfg.val_evaluator] == ['SemSegMetric', 'InstanceMaskAPMetric']
    assert cfg.default_hooks.checkpoint.save_best == 'sem_seg/mIoU'
