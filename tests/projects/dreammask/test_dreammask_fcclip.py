"""DreamMaskFCCLIP: loss_sra reaches the pixel decoder and the in-vocab head, never the frozen CLIP."""
import copy

import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.structures import InstanceData

import projects.dreammask.dreammask  # noqa: F401  (registers DreamMaskFCCLIP)
from ovseg.registry import MODELS
from ovseg.structures import SegDataSample


def _model(lambda_sra=0.1):
    init_default_scope('ovseg')
    cfg = Config.fromfile('configs/fcclip/fcclip_tiny_toy-scenes.py')
    m = copy.deepcopy(cfg.model)
    m.type = 'DreamMaskFCCLIP'
    m.sra = dict(num_classes=3, memory_bank_size=4, lambda_sra=lambda_sra)
    model = MODELS.build(m)
    model.set_vocabulary([['ball'], ['box'], ['grass']], [True, True, False], split='train')
    return model


def _batch(synthetic_flags):
    torch.manual_seed(0)
    samples = []
    for i, syn in enumerate(synthetic_flags):
        masks = torch.zeros(2, 64, 64, dtype=torch.bool)
        masks[0, 8:30, 8:30] = True
        masks[1, 40:, :] = True
        s = SegDataSample(metainfo=dict(is_synthetic=syn, img_shape=(64, 64), pad_shape=(64, 64),
                                        batch_input_shape=(64, 64), ori_shape=(64, 64)))
        s.gt_instances = InstanceData(labels=torch.tensor([0, 2]), masks=masks)
        samples.append(s)
    return torch.randn(len(samples), 3, 64, 64), samples


def test_sra_gradient_reaches_pixel_decoder_and_class_head_only():
    model = _model()
    inputs, samples = _batch([False, True])
    feats = model.extract_feat(inputs)
    out = model.sra_loss(feats, samples)
    assert out['loss_sra'].item() > 0 and out['sra_aligned'].item() == 2
    model.zero_grad()
    out['loss_sra'].backward()
    head = model.transformer_decoder.class_head
    assert head.class_embed.layers[0].weight.grad.abs().sum() > 0
    assert head._mask_pooling_proj[1].weight.grad.abs().sum() > 0
    assert model.pixel_decoder.mask_features.weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in model.backbone.parameters())  # frozen CLIP untouched
    assert model.transformer_decoder.query_feat.weight.grad is None  # decoder queries not on this path
    assert model.sra.memory.count.tolist() == [1, 0, 1]  # only the real sample's objects were banked


def test_loss_includes_sra_and_bank_is_in_state_dict():
    model = _model()
    inputs, samples = _batch([False, True])
    losses = model.loss(inputs, samples)
    assert {'loss_ce', 'loss_mask', 'loss_dice', 'loss_sra', 'sra_bank_fill'} <= set(losses)
    sd = model.state_dict()
    assert sd['sra.memory.count'].sum() == 2


def test_lambda_zero_skips_sra_entirely():
    model = _model(lambda_sra=0.0)
    inputs, samples = _batch([False, True])
    losses = model.loss(inputs, samples)
    assert 'loss_sra' not in losses
    assert model.sra.memory.count.sum() == 0


def test_real_objects_carry_no_graph_and_vocabulary_must_fit_the_bank():
    import pytest
    model = _model()
    inputs, samples = _batch([False, True])
    (real, _), (syn, _) = model.object_embeddings(model.extract_feat(inputs), samples)
    assert not real.requires_grad and syn.requires_grad
    with pytest.raises(ValueError, match='sra.num_classes=3'):
        model.set_vocabulary([['ball'], ['box'], ['grass'], ['star']], [True] * 4, split='train')
    model.set_vocabulary([['a'], ['b'], ['c'], ['d'], ['e']], [True] * 5, split='test')  # test vocab: any size


def test_synthetic_only_training_warns_that_the_bank_never_fills():
    import pytest
    model = _model()
    inputs, samples = _batch([True, True])
    feats = model.extract_feat(inputs)
    with pytest.warns(UserWarning, match='bank is still empty'):
        for _ in range(50):
            out = model.sra_loss(feats, samples)
    assert out['loss_sra'].item() == 0 and out['sra_bank_fill'].item() == 0
