"""FC-CLIP's inference scoring: geometric ensemble (vs a NumPy transcription), frozen-CLIP region logits."""
import warnings

import numpy as np
import pytest
import torch

from ovseg.models.heads import geometric_ensemble, get_classification_logits, out_vocab_logits
from ovseg.models.segmentors import append_void_classifier
from ovseg.models.text_encoders import CLIPTextEncoder
from ovseg.registry import MODELS
from ovseg.vocabulary import seen_classes


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


def test_geometric_ensemble_seen_uses_alpha_unseen_beta():
    in_l = torch.tensor([[[2.0, 0.0, 1.0]]])
    out_l = torch.tensor([[[0.0, 2.0, 5.0]]])
    all_seen = geometric_ensemble(in_l, out_l, torch.tensor([True, True]), alpha=0.0, beta=1.0)
    all_unseen = geometric_ensemble(in_l, out_l, torch.tensor([False, False]), alpha=0.0, beta=1.0)
    p_void = in_l.softmax(-1)[..., -1:]
    assert torch.allclose(all_seen.exp()[..., :2], in_l[..., :2].softmax(-1) * (1 - p_void) + 1e-8, atol=1e-6)
    expected_unseen = out_l[..., :2].softmax(-1) * (1 - p_void) + 1e-8
    assert torch.allclose(all_unseen.exp()[..., :2], expected_unseen, atol=1e-6)


@pytest.mark.parametrize('name', ['ovseg-tiny-convnext', 'ovseg-tiny-resnet'])
def test_out_vocab_logits(name):
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        bb = MODELS.build(dict(type='CLIPBackbone', model_name=name, pretrained=None, allow_random_init=True))
    feats = bb(torch.randn(2, 3, 128, 128))
    dense = feats['clip_vis_dense']  # 4×4
    masks = torch.full((2, 3, 32, 32), -5.0)
    masks[:, 0] = 5.0
    masks[:, 1, :16, :16] = 5.0  # one quadrant
    text, nums = CLIPTextEncoder(bb)([['cat', 'kitty'], ['dog'], ['car']])
    text = append_void_classifier(text, torch.randn(1, bb.embed_dim))
    logits, valid = out_vocab_logits(bb, dense, masks, text, nums)
    assert logits.shape == (2, 3, 4) and torch.isfinite(logits).all()
    assert valid.tolist() == [[True, True, False]] * 2
    # full mask == CLIP's global image embedding for ConvNeXt (avg pool) -> logits of encode_image
    if bb.model_type == 'convnext':
        img = torch.randn(1, 3, 128, 128)
        d = bb(img)['clip_vis_dense']
        lg, _ = out_vocab_logits(bb, d, torch.ones(1, 1, 8, 8), text, nums)
        with torch.no_grad():
            ref = bb.clip_model.encode_image(img)
        exp = get_classification_logits(ref[:, None], text, bb.clip_model.logit_scale, nums)
        assert torch.allclose(lg, exp, atol=1e-3)
    # geometric ensemble glue with valid mask
    in_logits = torch.randn(2, 3, 4)
    seen = torch.tensor(seen_classes([['cat', 'kitty'], ['dog'], ['car']], [['cat'], ['car']]))
    out = geometric_ensemble(in_logits, logits, seen, valid_mask=valid)
    assert out.shape == (2, 3, 4) and torch.isfinite(out).all()
