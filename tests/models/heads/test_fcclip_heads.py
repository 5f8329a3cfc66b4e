"""FC-CLIP heads: mask pooling, classification logits, in/out-vocab classifiers, geometric ensemble."""
import math
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from ovseg.models.heads import (GeometricEnsemble, InVocabClassifier, OutOfVocabClassifier,
                                append_void_classifier, category_overlap_mask, geometric_ensemble,
                                get_classification_logits, mask_pooling)
from ovseg.registry import MODELS


def test_mask_pooling_average_and_no_mask_grad():
    feats = torch.arange(2 * 3 * 4 * 4, dtype=torch.float32).reshape(2, 3, 4, 4).requires_grad_()
    masks = torch.full((2, 2, 4, 4), -1.0, requires_grad=True)
    with torch.no_grad():
        masks[0, 0, :2, :2] = 2.0
        masks[1, 1] = 0.5
    pooled = mask_pooling(feats, masks)
    assert pooled.shape == (2, 2, 3)
    assert torch.allclose(pooled[0, 0], feats[0, :, :2, :2].mean((-1, -2)), atol=1e-4)
    assert torch.allclose(pooled[1, 1], feats[1].mean((-1, -2)), atol=1e-4)
    assert torch.equal(pooled[0, 1], torch.zeros(3))  # empty mask -> 0 (eps denominator)
    pooled.sum().backward()
    assert feats.grad is not None and masks.grad is None
    # masks at a different resolution are resized bilinearly first
    big = F.interpolate(masks.detach(), size=(8, 8), mode='bilinear', align_corners=False)
    assert torch.allclose(mask_pooling(feats.detach(), big), mask_pooling(feats.detach(), masks.detach()))


def test_get_classification_logits_max_over_synonyms_and_clamp():
    torch.manual_seed(0)
    text = F.normalize(torch.randn(6, 5), dim=-1)  # 5 synonym rows + void
    x = torch.randn(2, 3, 5)
    nums = [2, 1, 2]
    logits = get_classification_logits(x, text, torch.tensor(math.log(1000.0)), nums)
    sims = 100.0 * F.normalize(x, dim=-1) @ text.T  # scale clamped to 100
    expected = torch.stack([sims[..., :2].max(-1).values, sims[..., 2], sims[..., 3:5].max(-1).values,
                            sims[..., 5]], dim=-1)
    assert logits.shape == (2, 3, 4)
    assert torch.allclose(logits, expected, atol=1e-4)
    with pytest.raises(ValueError):
        get_classification_logits(x, text, torch.tensor(0.0), [2, 2])


def test_in_vocab_classifier_names_and_forward():
    head = MODELS.build(dict(type='InVocabClassifier', hidden_dim=256, embed_dim=768))
    names = {k: tuple(v.shape) for k, v in head.state_dict().items()}
    assert names == {
        '_mask_pooling_proj.0.weight': (256,), '_mask_pooling_proj.0.bias': (256,),
        '_mask_pooling_proj.1.weight': (256, 256), '_mask_pooling_proj.1.bias': (256,),
        'class_embed.layers.0.weight': (256, 256), 'class_embed.layers.0.bias': (256,),
        'class_embed.layers.1.weight': (256, 256), 'class_embed.layers.1.bias': (256,),
        'class_embed.layers.2.weight': (768, 256), 'class_embed.layers.2.bias': (768,),
        'logit_scale': ()}
    assert math.isclose(head.logit_scale.item(), math.log(1 / 0.07), rel_tol=1e-6)
    assert head.logit_scale.requires_grad
    small = InVocabClassifier(hidden_dim=16, embed_dim=8)
    q, mf, om = torch.randn(2, 5, 16), torch.randn(2, 16, 8, 8), torch.randn(2, 5, 4, 4)
    text = append_void_classifier(F.normalize(torch.randn(4, 8), dim=-1), torch.randn(1, 8))
    logits = small(q, mf, om, text, [1, 2, 1])
    assert logits.shape == (2, 5, 4)
    emb = small.class_embed(small._mask_pooling_proj(mask_pooling(mf, om)) + q)
    assert torch.allclose(logits, get_classification_logits(emb, text, small.logit_scale, [1, 2, 1]))
    logits.sum().backward()
    assert small.logit_scale.grad is not None and small.class_embed.layers[0].weight.grad is not None


def _np_softmax(x):
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def _np_ensemble(in_l, out_l, seen, alpha, beta, valid=None):
    p_in, p_out = _np_softmax(in_l[..., :-1]), _np_softmax(out_l[..., :-1])
    a = np.full(p_in.shape, alpha)
    b = np.full(p_in.shape, beta)
    if valid is not None:
        a = a * valid[..., None]
        b = b * valid[..., None]
    res = np.where(seen, np.log(p_in ** (1 - a) * p_out ** a), np.log(p_in ** (1 - b) * p_out ** b))
    p_void = _np_softmax(in_l)[..., -1:]
    return np.log(np.concatenate([_np_softmax(res) * (1 - p_void), p_void], -1) + 1e-8)


@pytest.mark.parametrize('use_valid', [False, True])
def test_geometric_ensemble_matches_numpy(use_valid):
    rng = np.random.default_rng(0)
    in_l = rng.normal(size=(2, 3, 5)) * 3
    out_l = rng.normal(size=(2, 3, 5)) * 3
    seen = np.array([True, False, True, False])
    valid = np.array([[1, 0, 1], [1, 1, 0]], dtype=np.float64) if use_valid else None
    got = geometric_ensemble(torch.tensor(in_l), torch.tensor(out_l), torch.tensor(seen), 0.4, 0.8,
                             torch.tensor(valid).bool() if use_valid else None)
    expected = _np_ensemble(in_l, out_l, seen, 0.4, 0.8, valid)
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-6, atol=1e-8)
    probs = got.exp().sum(-1).numpy()
    np.testing.assert_allclose(probs, 1 + 5e-8, atol=1e-6)  # distribution incl. void (+1e-8 each)
    # void column is exactly log(p_void(in) + 1e-8)
    np.testing.assert_allclose(got[..., -1].numpy(), np.log(_np_softmax(in_l)[..., -1] + 1e-8), rtol=1e-6)
    if use_valid:  # invalid query -> pure in-vocab distribution over classes
        p_in = _np_softmax(in_l[0, 1, :-1])
        p_void = _np_softmax(in_l[0, 1])[-1]
        np.testing.assert_allclose(got[0, 1, :-1].exp().numpy(), p_in * (1 - p_void) + 1e-8, rtol=1e-6)
    # module form
    mod = GeometricEnsemble(alpha=0.4, beta=0.8, ensemble_on_valid_mask=use_valid)
    again = mod(torch.tensor(in_l), torch.tensor(out_l), torch.tensor(seen),
                torch.tensor(valid).bool() if use_valid else None)
    assert torch.allclose(again, got)


def test_geometric_ensemble_seen_uses_alpha_unseen_beta():
    in_l = torch.tensor([[[2.0, 0.0, 1.0]]])
    out_l = torch.tensor([[[0.0, 2.0, 5.0]]])
    all_seen = geometric_ensemble(in_l, out_l, torch.tensor([True, True]), alpha=0.0, beta=1.0)
    all_unseen = geometric_ensemble(in_l, out_l, torch.tensor([False, False]), alpha=0.0, beta=1.0)
    p_void = in_l.softmax(-1)[..., -1:]
    assert torch.allclose(all_seen.exp()[..., :2], in_l[..., :2].softmax(-1) * (1 - p_void) + 1e-8, atol=1e-6)
    expected_unseen = out_l[..., :2].softmax(-1) * (1 - p_void) + 1e-8
    assert torch.allclose(all_unseen.exp()[..., :2], expected_unseen, atol=1e-6)


def test_category_overlap_mask():
    train = [['person', 'child'], 'car,automobile', ['Sky']]
    test = [['man', 'Person '], ['truck'], 'sky, clouds', ['automobile']]
    assert category_overlap_mask(test, train).tolist() == [True, False, True, True]


@pytest.mark.parametrize('name', ['ovseg-tiny-convnext', 'ovseg-tiny-resnet'])
def test_out_of_vocab_classifier(name):
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        bb = MODELS.build(dict(type='CLIPBackbone', model_name=name, pretrained=None, allow_random_init=True))
    feats = bb(torch.randn(2, 3, 128, 128))
    dense = feats['clip_vis_dense']  # 4×4
    masks = torch.full((2, 3, 32, 32), -5.0)
    masks[:, 0] = 5.0
    masks[:, 1, :16, :16] = 5.0  # one quadrant
    text, nums = bb.get_text_classifier([['cat', 'kitty'], ['dog'], ['car']])
    text = append_void_classifier(text, torch.randn(1, bb.embed_dim))
    logits, valid = MODELS.build(dict(type='OutOfVocabClassifier'))(bb, dense, masks, text, nums)
    assert logits.shape == (2, 3, 4) and torch.isfinite(logits).all()
    assert valid.tolist() == [[True, True, False]] * 2
    # full mask == CLIP's global image embedding for ConvNeXt (avg pool) -> logits of encode_image
    if bb.model_type == 'convnext':
        img = torch.randn(1, 3, 128, 128)
        d = bb(img)['clip_vis_dense']
        lg, _ = OutOfVocabClassifier()(bb, d, torch.ones(1, 1, 8, 8), text, nums)
        with torch.no_grad():
            ref = bb.clip_model.encode_image(img)
        exp = get_classification_logits(ref[:, None], text, bb.clip_model.logit_scale, nums)
        assert torch.allclose(lg, exp, atol=1e-3)
    # geometric ensemble glue with valid mask
    in_logits = torch.randn(2, 3, 4)
    seen = category_overlap_mask([['cat', 'kitty'], ['dog'], ['car']], [['cat'], ['car']])
    out = geometric_ensemble(in_logits, logits, seen, valid_mask=valid)
    assert out.shape == (2, 3, 4) and torch.isfinite(out).all()
