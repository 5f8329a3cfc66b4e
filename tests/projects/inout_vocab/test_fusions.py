"""The five fusions of the study's combined runs, checked against their formulas (seed 003)."""
import math

import pytest
import torch
import torch.nn.functional as F

from projects.inout_vocab.inout_vocab.fusions import (
    FUSIONS,
    build_fusion,
    entropy,
    fuse_decoder_outputs,
)


def _logits(seed=0, shape=(2, 5, 20)):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=g) * 3, torch.randn(shape, generator=g) * 3


def test_logit_fusions():
    z1, z2 = _logits()
    torch.testing.assert_close(build_fusion('mean_logits')(z1, z2).as_logits(), (z1 + z2) / 2)
    fused = build_fusion(dict(type='weighted_logits', weights=(0.6, 0.4)))(z1, z2)
    assert fused.kind == 'logits'
    torch.testing.assert_close(fused.as_logits(), 0.6 * z1 + 0.4 * z2)


def test_entropy_fusion_seed_formula_and_normalised_default():
    z1, z2 = _logits(1)
    s1, s2 = z1.softmax(-1), z2.softmax(-1)
    h1 = -(s1 * torch.log(s1 + 1e-9)).sum(-1, keepdim=True)  # seed: -Σ s log(s + 1e-9)
    h2 = -(s2 * torch.log(s2 + 1e-9)).sum(-1, keepdim=True)
    seed = build_fusion(dict(type='entropy', normalize_entropy=False))(z1, z2)
    torch.testing.assert_close(seed.scores, s1 * (1 - h1) + s2 * (1 - h2))
    norm = build_fusion('entropy')(z1, z2)
    k = math.log(20)
    torch.testing.assert_close(norm.scores, s1 * (1 - h1 / k) + s2 * (1 - h2 / k))
    assert (norm.scores >= 0).all()
    # the seed's unnormalised entropy exceeds 1 for uncertain queries: negative "probabilities" (the reason for
    # the normalised default); they are clamped before the log, never NaN
    flat = torch.zeros(1, 1, 20)
    assert (build_fusion(dict(type='entropy', normalize_entropy=False))(flat, flat).scores < 0).all()
    assert torch.isfinite(build_fusion(dict(type='entropy', normalize_entropy=False))(flat, flat).as_logits()).all()
    assert entropy(torch.full((3, 20), 1 / 20)).squeeze() == pytest.approx([1.0] * 3, abs=1e-6)


def test_threshold_fusion_counts_only_confident_models():
    conf = torch.tensor([[[8.0, 0.0, 0.0]]])  # max prob ~ 0.999
    unsure = torch.tensor([[[0.1, 0.0, 0.2]]])  # max prob ~ 0.36
    f = build_fusion(dict(type='softmax_sum_threshold', threshold=0.7))
    torch.testing.assert_close(f(conf, unsure).scores, conf.softmax(-1))
    torch.testing.assert_close(f(unsure, conf).scores, conf.softmax(-1))
    torch.testing.assert_close(f(unsure, unsure).scores, 2 * unsure.softmax(-1))  # neither: plain sum
    torch.testing.assert_close(f(conf, conf).scores, 2 * conf.softmax(-1))


def test_topk_fusion_keeps_k_classes_per_model():
    z1, z2 = _logits(2)
    fused = build_fusion(dict(type='softmax_topk', k=10))(z1, z2).scores
    s1, s2 = z1.softmax(-1), z2.softmax(-1)
    expected = torch.zeros_like(s1)
    for s in (s1, s2):
        idx = s.topk(10, -1).indices
        expected += torch.zeros_like(s).scatter(-1, idx, s.gather(-1, idx))
    torch.testing.assert_close(fused, expected)
    assert ((fused > 0).sum(-1) <= 20).all() and ((fused > 0).sum(-1) >= 10).all()


def test_probabilities_enter_the_criterion_as_log_probabilities():
    """CE on a fused-probability output equals -log of the renormalised fused probability of the target."""
    z1, z2 = _logits(3, (1, 4, 6))
    fused = build_fusion('entropy')(z1, z2)
    target = torch.tensor([0, 2, 5, 1])
    ce = F.cross_entropy(fused.as_logits()[0], target, reduction='none')
    p = fused.scores[0] / fused.scores[0].sum(-1, keepdim=True)
    expected = -torch.log(p[torch.arange(4), target])
    torch.testing.assert_close(ce, expected, rtol=1e-5, atol=1e-5)
    # the probabilities themselves used as logits would give a different (nearly uniform) loss
    assert not torch.allclose(F.cross_entropy(fused.scores[0], target, reduction='none'), expected, atol=1e-2)


def test_fuse_decoder_outputs_fuses_every_layer_and_averages_masks():
    z1, z2 = _logits(4, (1, 3, 5))
    m1, m2 = torch.randn(1, 3, 4, 4), torch.randn(1, 3, 4, 4)
    out1 = dict(pred_logits=z1, pred_masks=m1, aux_outputs=[dict(pred_logits=z1 * 2, pred_masks=m1)])
    out2 = dict(pred_logits=z2, pred_masks=m2, aux_outputs=[dict(pred_logits=z2 * 2, pred_masks=m2)])
    fused = fuse_decoder_outputs(out1, out2, build_fusion('mean_logits'))
    torch.testing.assert_close(fused['pred_masks'], (m1 + m2) / 2)
    torch.testing.assert_close(fused['aux_outputs'][0]['pred_logits'], z1 + z2)
    with pytest.raises(ValueError, match='same queries and vocabulary'):
        fuse_decoder_outputs(out1, dict(out2, pred_logits=z2[..., :4]), build_fusion('mean_logits'))


def test_build_fusion_errors():
    with pytest.raises(ValueError, match='unknown fusion'):
        build_fusion('max')
    with pytest.raises(ValueError, match='bad options'):
        build_fusion(dict(type='entropy', temperature=2))
    with pytest.raises(ValueError, match='two weights'):
        build_fusion(dict(type='weighted_logits', weights=(1.0,)))
    assert set(FUSIONS) == {'mean_logits', 'weighted_logits', 'softmax_sum_threshold', 'softmax_topk', 'entropy'}
