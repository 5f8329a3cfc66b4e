"""FCCLIP segmentor: vocabulary handling, loss / predict / tensor modes, prediction fields and sizes.

The first group uses tiny stand-in pixel decoder / decoder / criterion (registered here) so the segmentor's
own logic is tested in isolation and fast; the second group builds the real tiny config.
"""
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.structures import InstanceData
from torch import nn

import ovseg.models  # noqa: F401
from ovseg.models.heads import InVocabClassifier
from ovseg.models.layers import mask_pooling
from ovseg.registry import MODELS
from ovseg.structures import SegDataSample

init_default_scope('ovseg')
TINY_CLIP = dict(type='CLIPBackbone',
                 model_name='ovseg-tiny-convnext',
                 pretrained=None,
                 allow_random_init=True)


@MODELS.register_module(force=True)
class _StubPixelDecoder(nn.Module):

    def __init__(self, input_shape, conv_dim=16, mask_dim=16):
        super().__init__()
        self.conv_dim, self.mask_dim = conv_dim, mask_dim
        self.proj = nn.ModuleDict({k: nn.Conv2d(v['channels'], conv_dim, 1) for k, v in input_shape.items()})

    def forward(self, feats):
        return self.proj['res2'](feats['res2']), [self.proj[k](feats[k]) for k in ('res5', 'res4', 'res3')]


@MODELS.register_module(force=True)
class _StubDecoder(nn.Module):

    def __init__(self, in_channels, mask_dim, num_queries=6, class_head=None):
        super().__init__()
        self.query = nn.Embedding(num_queries, mask_dim)
        self.class_head = InVocabClassifier(hidden_dim=mask_dim, embed_dim=class_head['embed_dim'])

    def forward(self, multi_scale, mask_features, class_inputs=None):
        q = self.query.weight[None].expand(mask_features.shape[0], -1, -1)
        masks = torch.einsum('bqc,bchw->bqhw', q, mask_features)
        logits = self.class_head(q, mask_pooling(mask_features, masks), **class_inputs)
        return dict(pred_logits=logits, pred_masks=masks, aux_outputs=[])


@MODELS.register_module(force=True)
class _StubCriterion(nn.Module):

    def forward(self, outputs, targets):
        self.last_targets = targets
        return dict(loss_ce=outputs['pred_logits'].logsumexp(-1).mean())


def _stub_model(**kw):
    return MODELS.build(
        dict(type='FCCLIP',
             data_preprocessor=dict(type='SegDataPreprocessor'),
             backbone=TINY_CLIP,
             pixel_decoder=dict(type='_StubPixelDecoder'),
             transformer_decoder=dict(type='_StubDecoder', class_head=dict(type='InVocabClassifier')),
             criterion=dict(type='_StubCriterion'),
             **kw))


def _samples(n, img_shape, ori_shape, labels=((0, 2), ), size=None):
    out = []
    for i in range(n):
        s = SegDataSample(metainfo=dict(img_shape=img_shape, ori_shape=ori_shape))
        lab = torch.tensor(labels[i % len(labels)], dtype=torch.long)
        h, w = size or img_shape
        masks = torch.zeros(len(lab), h, w, dtype=torch.bool)
        for j in range(len(lab)):
            masks[j, :, j * w // max(len(lab), 1):(j + 1) * w // max(len(lab), 1)] = True
        s.gt_instances = InstanceData(labels=lab, masks=masks)
        out.append(s)
    return out


VOCAB = [['cat', 'kitty'], ['dog'], ['sky']]
THING = [True, True, False]


def test_vocabulary_validation_and_errors():
    model = _stub_model()
    model.eval()
    with pytest.raises(RuntimeError, match='set_vocabulary'):
        model.predict(torch.zeros(1, 3, 64, 64))
    with pytest.raises(ValueError, match='Empty'):
        model.set_vocabulary([], [], split='train')
    with pytest.raises(ValueError, match='Duplicate'):
        model.set_vocabulary([['cat'], ['dog'], ['Cat']], [True] * 3, split='test')
    with pytest.raises(ValueError, match='is_thing'):
        model.set_vocabulary(VOCAB, [True], split='test')
    with pytest.raises(ValueError, match='split'):
        model.set_vocabulary(VOCAB, THING, split='val')
    with pytest.raises(KeyError, match='unknown keys'):
        _stub_model(test_cfg=dict(panoptic=True))
    model.train()
    with pytest.raises(RuntimeError, match="split='train'"):
        model.loss(torch.zeros(1, 3, 64, 64), _samples(1, (64, 64), (64, 64)))


def test_seen_mask_and_text_classifier_shapes():
    model = _stub_model()
    model.set_vocabulary(VOCAB, THING, split='train')
    model.set_vocabulary(['kitty,tabby', 'cow', 'sky'], [True, True, False], split='test')
    assert model.seen_mask().tolist() == [True, False, True]
    clf, nums = model.get_text_classifier('test')
    assert nums == [2, 1, 1] and clf.shape == (5, 64)  # 4 synonyms + void row
    assert torch.allclose(clf.norm(dim=-1), torch.ones(5), atol=1e-5)
    # a new train vocabulary recomputes the seen mask
    model.set_vocabulary([['cow']], None, split='train')
    assert model.seen_mask().tolist() == [False, True, False]


def test_loss_targets_from_gt_instances_including_empty_sample():
    model = _stub_model()
    model.set_vocabulary(VOCAB, THING, split='train')
    model.train()
    samples = _samples(2, (64, 64), (64, 64), labels=((0, 2), ()))
    losses = model.loss(torch.randn(2, 3, 64, 64), samples)
    assert torch.isfinite(losses['loss_ce'])
    targets = model.criterion.last_targets
    assert targets[0]['labels'].tolist() == [0, 2] and targets[0]['masks'].shape == (2, 64, 64)
    assert targets[1]['labels'].numel() == 0 and targets[1]['masks'].shape == (0, 64, 64)
    bad = _samples(1, (64, 64), (64, 64), labels=((5, ), ))
    with pytest.raises(ValueError, match='outside the train vocabulary'):
        model.loss(torch.randn(1, 3, 64, 64), bad)


def test_predict_fields_at_original_size_with_padding():
    model = _stub_model()
    model.set_vocabulary(VOCAB, THING, split='train')
    model.set_vocabulary(VOCAB, THING, split='test')
    model.eval()
    # batch padded to 64x64; valid image 60x50 that came from a 120x100 original
    samples = [SegDataSample(metainfo=dict(img_shape=(60, 50), ori_shape=(120, 100))) for _ in range(2)]
    out = model.predict(torch.randn(2, 3, 64, 64), samples)
    s = out[0]
    assert s.pred_panoptic_seg.data.shape == (1, 120, 100) and s.pred_panoptic_seg.data.dtype == torch.long
    assert s.pred_sem_seg.data.shape == (1, 120, 100)
    assert int(s.pred_sem_seg.data.max()) < 3
    ids = set(s.pred_panoptic_seg.data.unique().tolist()) - {0}
    assert ids == {seg['id'] for seg in s.pred_segments_info}
    for seg in s.pred_segments_info:
        assert set(seg) == {'id', 'category_id', 'isthing', 'score'
                            } and seg['isthing'] == THING[seg['category_id']]
    inst = s.pred_instances
    assert inst.masks.shape[1:] == (120, 100) and inst.masks.dtype == torch.bool
    assert all(THING[int(c)] for c in inst.labels)  # panoptic on -> things only
    assert len(inst.labels) <= 6 * 2  # 6 queries x 2 thing classes
    d = s.to_dict()  # what metrics receive
    assert 'pred_segments_info' in d and 'data' in d['pred_panoptic_seg']


def test_semantic_only_and_tensor_mode():
    model = _stub_model(test_cfg=dict(panoptic_on=False, instance_on=False, output_seg_logits=True))
    model.set_vocabulary(VOCAB, THING, split='test')
    model.eval()
    s = model.predict(torch.randn(1, 3, 64, 64),
                      [SegDataSample(metainfo=dict(img_shape=(64, 40), ori_shape=(32, 20)))])[0]
    assert 'pred_panoptic_seg' not in s and 'pred_instances' not in s
    assert s.pred_sem_seg.data.shape == (1, 32, 20) and s.seg_logits.data.shape == (3, 32, 20)
    out = model(torch.randn(1, 3, 64, 64), mode='tensor')
    assert out['pred_logits'].shape == (1, 6, 4) and out['pred_masks'].shape == (1, 6, 16, 16)
    feats = model.extract_feat(torch.randn(1, 3, 64, 64))
    assert {'res2', 'res3', 'res4', 'res5', 'clip_vis_dense', 'mask_features',
            'multi_scale_features'} <= set(feats)


def test_geometric_ensemble_is_used_and_alpha_beta_zero_is_pure_in_vocab():
    torch.manual_seed(0)
    model = _stub_model()
    model.set_vocabulary(VOCAB, THING, split='train')
    model.set_vocabulary(VOCAB + [['cow']], THING + [True], split='test')
    model.eval()
    x = torch.randn(1, 3, 64, 64)
    feats = model.extract_feat(x)
    class_inputs = model.class_inputs('test')
    outputs = model.decode(feats, 'test', class_inputs)
    ens = model.inference_class_logits(feats, outputs, class_inputs)
    assert ens.shape == outputs['pred_logits'].shape
    assert torch.allclose(ens.exp().sum(-1), torch.ones(1, 6), atol=1e-4)
    model.test_cfg.update(geometric_ensemble_alpha=0.0, geometric_ensemble_beta=0.0)
    pure = model.inference_class_logits(feats, outputs, class_inputs)
    assert torch.allclose(pure.exp(), outputs['pred_logits'].softmax(-1), atol=1e-5)
    assert not torch.allclose(pure, ens, atol=1e-3)


# ----------------------------------------------------------------------------- real modules (tiny config)
def _tiny_model():
    from pathlib import Path

    from tests.models.segmentors.test_fcclip_configs import require_fcclip_modules
    require_fcclip_modules()
    cfg = Config.fromfile(
        str(Path(__file__).resolve().parents[3] / 'configs/fcclip/fcclip_tiny_toy-scenes.py'))
    torch.manual_seed(0)
    return MODELS.build(cfg.model)


def test_tiny_model_loss_with_empty_samples_and_backward():
    model = _tiny_model()
    model.set_vocabulary(VOCAB, THING, split='train')
    model.train()
    x = torch.randn(2, 3, 64, 64)
    losses = model.loss(x, _samples(2, (64, 64), (64, 64), labels=((0, 2), ())))
    assert {'loss_ce', 'loss_mask', 'loss_dice', 'd0.loss_ce', 'd2.loss_dice'} <= set(losses)
    total = sum(losses.values())
    assert torch.isfinite(total)
    total.backward()
    assert model.void_embedding.weight.grad is not None
    assert model.transformer_decoder.class_head.logit_scale.grad is not None
    assert all(p.grad is None for p in model.backbone.parameters())  # CLIP stays frozen
    # a batch where no image has a segment: all queries learn void, mask losses are zero, no NaN
    model.zero_grad()
    empty = model.loss(x, _samples(2, (64, 64), (64, 64), labels=((), ())))
    assert all(torch.isfinite(v) for v in empty.values())
    assert empty['loss_ce'].item() > 0 and empty['loss_mask'].item() == 0.0
    sum(empty.values()).backward()


def test_tiny_model_predict_with_ensemble_and_valid_mask():
    model = _tiny_model()
    model.set_vocabulary(VOCAB, THING, split='train')
    model.set_vocabulary(VOCAB + [['cow']], THING + [True], split='test')
    model.test_cfg.update(geometric_ensemble_alpha=0.4,
                          geometric_ensemble_beta=0.8,
                          instance_on=True,
                          ensemble_on_valid_mask=True)
    model.eval()
    samples = [SegDataSample(metainfo=dict(img_shape=(64, 48), ori_shape=(96, 72)))]
    with torch.no_grad():
        s = model.predict(torch.randn(1, 3, 64, 64), samples)[0]
    assert s.pred_panoptic_seg.data.shape == (1, 96, 72) and s.pred_sem_seg.data.shape == (1, 96, 72)
    assert s.pred_instances.masks.shape[1:] == (96, 72)
    assert len(s.pred_instances.scores) <= 100
