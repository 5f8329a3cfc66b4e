"""MaskFormer base: a closed-set Mask2Former, the public decode / targets / criterion API (training on fused
logits of two models), FC-CLIP's seen-vocabulary override."""
import warnings

import pytest
import torch
from mmengine.registry import init_default_scope
from mmengine.structures import InstanceData

import ovseg.models  # noqa: F401
from ovseg.registry import MODELS
from ovseg.structures import SegDataSample

init_default_scope('ovseg')

VOCAB = [['cat'], ['dog'], ['sky']]
THING = [True, True, False]


def _model_cfg(class_head, model_type='MaskFormer', **kw):
    return dict(
        type=model_type,
        data_preprocessor=dict(type='SegDataPreprocessor'),
        backbone=dict(type='CLIPBackbone', model_name='ovseg-tiny-convnext', pretrained=None, allow_random_init=True),
        pixel_decoder=dict(type='MSDeformAttnPixelDecoder', conv_dim=32, mask_dim=32, transformer_enc_layers=1,
                           transformer_nheads=4, transformer_dim_feedforward=64),
        transformer_decoder=dict(type='MaskedAttentionDecoder', hidden_dim=32, num_queries=5, nheads=4,
                                 dim_feedforward=64, dec_layers=2, class_head=class_head),
        criterion=dict(type='SetCriterion', matcher=dict(type='HungarianMatcher', num_points=64), num_points=64),
        **kw)


def _build(cfg):
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        torch.manual_seed(0)
        return MODELS.build(cfg)


def _batch(n=2, size=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    samples = []
    for _ in range(n):
        masks = torch.zeros(2, size, size, dtype=torch.bool)
        masks[0, :size // 2] = True
        masks[1, size // 2:] = True
        s = SegDataSample(metainfo=dict(img_shape=(size, size), ori_shape=(size, size)))
        s.gt_instances = InstanceData(masks=masks, labels=torch.randint(0, 3, (2,), generator=g))
        samples.append(s)
    imgs = [torch.randint(0, 256, (3, size, size), generator=g, dtype=torch.uint8) for _ in range(n)]
    return dict(inputs=imgs, data_samples=samples)


def test_closed_set_mask2former_trains_and_predicts():
    model = _build(_model_cfg(dict(type='LinearClassHead', hidden_dim=32, num_classes=3)))
    assert model.text_encoder is None
    model.set_vocabulary(VOCAB, THING, split='train')
    model.set_vocabulary(VOCAB, THING, split='test')
    with pytest.raises(ValueError, match='predicts 3 classes'):
        model.set_vocabulary(VOCAB + [['cow']], THING + [True], split='test')
    model.train()
    data = model.data_preprocessor(_batch(), True)
    losses = model(**data, mode='loss')
    assert set(losses) == {f'{p}loss_{k}' for p in ('', 'd0.', 'd1.') for k in ('ce', 'mask', 'dice')}
    sum(losses.values()).backward()
    assert model.transformer_decoder.class_head.class_embed.weight.grad.abs().sum() > 0
    model.eval()
    data = model.data_preprocessor(_batch(), False)
    with torch.no_grad():
        preds = model(**data, mode='predict')
    assert preds[0].pred_sem_seg.data.shape == (1, 64, 64)
    assert preds[0].pred_panoptic_seg.data.shape == (1, 64, 64)
    assert model.test_cfg['object_mask_threshold'] == 0.8  # Mask2Former's default (FC-CLIP's eval yaml: 0.0)


def test_public_api_trains_on_fused_logits_of_two_models():
    """The in/out-vocabulary study's two-model training: decode both, fuse, run the criterion on the fusion."""
    head = dict(type='InVocabClassifier', hidden_dim=32, embed_dim=None)
    a = _build(_model_cfg(head, model_type='FCCLIP'))
    b = _build(_model_cfg(head, model_type='FCCLIP'))
    for m in (a, b):
        m.set_vocabulary(VOCAB, THING, split='train')
        m.train()
    data = a.data_preprocessor(_batch(), True)
    targets = a.build_targets(data['data_samples'])
    assert [t['masks'].dtype for t in targets] == [torch.bool, torch.bool]
    out_a = a.decode(a.extract_feat(data['inputs']), 'train')
    out_b = b.decode(b.extract_feat(data['inputs']), 'train')
    fused = dict(pred_masks=0.5 * (out_a['pred_masks'] + out_b['pred_masks']),
                 pred_logits=torch.log(0.5 * (out_a['pred_logits'].softmax(-1) + out_b['pred_logits'].softmax(-1))))
    losses = a.compute_losses(fused, targets)
    assert set(losses) == {'loss_ce', 'loss_mask', 'loss_dice'}  # no aux_outputs in the fusion
    sum(losses.values()).backward()
    for m in (a, b):
        assert m.transformer_decoder.query_feat.weight.grad.abs().sum() > 0
        assert m.void_embedding.weight.grad is not None


def test_seen_classes_follow_the_train_vocabulary_unless_overridden():
    head = dict(type='InVocabClassifier', hidden_dim=32, embed_dim=None)
    model = _build(_model_cfg(head, model_type='FCCLIP'))
    model.set_vocabulary(VOCAB + [['star']], THING + [True], split='train')
    model.set_vocabulary([['star'], ['dog'], ['tree']], [True, True, False], split='test')
    assert model.seen_mask().tolist() == [True, True, False]
    model.set_seen_vocabulary(VOCAB)  # e.g. "COCO only": synthetic novel names count as unseen
    assert model.seen_mask().tolist() == [False, True, False]
    model.set_vocabulary(VOCAB, THING, split='train')  # the override survives vocabulary changes
    assert model.seen_mask().tolist() == [False, True, False]
    model.set_seen_vocabulary(None)
    assert model.seen_mask().tolist() == [False, True, False]
    model.set_vocabulary(VOCAB + [['tree']], THING + [False], split='train')
    assert model.seen_mask().tolist() == [False, True, True]
