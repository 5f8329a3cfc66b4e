"""SetCriterion / HungarianMatcher: parity with transformers' Mask2FormerLoss, optimality, edge cases."""
import itertools

import pytest
import torch
from transformers import Mask2FormerConfig
from transformers.models.mask2former.modeling_mask2former import Mask2FormerLoss

from ovseg.models.losses import HungarianMatcher, SetCriterion


def _inputs(seed=0, bs=2, q=6, c=4, h=16, n=(3, 2)):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(bs, q, c + 1, generator=g)
    masks = torch.randn(bs, q, h, h, generator=g)
    targets = [dict(labels=torch.randint(0, c, (k,), generator=g),
                    masks=torch.rand(k, 4 * h, 4 * h, generator=g) > 0.5) for k in n]
    return logits, masks, targets


def test_matches_transformers_mask2former_loss():
    """Same inputs and the same random stream: both draw matcher points per image, then uncertainty points,
    in the same order, so with one seed the assignments and all three losses must coincide."""
    logits, masks, targets = _inputs()
    points = 64
    unit = [dict(type='ClassCELoss', loss_weight=1.0, eos_coef=0.1), dict(type='MaskBCELoss', loss_weight=1.0),
            dict(type='MaskDiceLoss', loss_weight=1.0)]
    ours = SetCriterion(HungarianMatcher(2.0, 5.0, 5.0, num_points=points), losses=unit, deep_supervision=False,
                        num_points=points)
    cfg = Mask2FormerConfig(num_labels=4, no_object_weight=0.1, train_num_points=points, oversample_ratio=3.0,
                            importance_sample_ratio=0.75, class_weight=2.0, mask_weight=5.0, dice_weight=5.0)
    ref = Mask2FormerLoss(cfg, weight_dict={})
    torch.manual_seed(123)
    a = ours(dict(pred_logits=logits, pred_masks=masks), targets)
    torch.manual_seed(123)
    b = ref(masks, logits, [t['masks'].float() for t in targets], [t['labels'] for t in targets])
    assert torch.allclose(a['loss_ce'], b['loss_cross_entropy'], atol=1e-6)
    assert torch.allclose(a['loss_mask'], b['loss_mask'], atol=1e-6)
    assert torch.allclose(a['loss_dice'], b['loss_dice'], atol=1e-6)


def test_matcher_is_optimal_against_brute_force():
    """Spatially constant masks make the sampled costs exact, so brute force gives the true optimum."""
    g = torch.Generator().manual_seed(0)
    q, h = 5, 8
    logits = torch.randn(1, q, 4, generator=g)
    masks = torch.randn(1, q, 1, 1, generator=g).expand(1, q, h, h).contiguous()
    labels = torch.tensor([0, 2, 1])
    tgt_masks = torch.stack([torch.ones(h, h), torch.zeros(h, h), torch.ones(h, h)]).bool()
    matcher = HungarianMatcher(2.0, 5.0, 5.0, num_points=16)
    (rows, cols), = matcher(dict(pred_logits=logits, pred_masks=masks), [dict(labels=labels, masks=tgt_masks)])

    def cost(qi, ti):
        p = logits[0, qi].softmax(-1)[labels[ti]]
        s = masks[0, qi, 0, 0].sigmoid()
        t = float(tgt_masks[ti, 0, 0])
        bce = -(t * torch.log(s) + (1 - t) * torch.log(1 - s))
        dice = 1 - (2 * s * t * 16 + 1) / (s * 16 + t * 16 + 1)
        return float(2.0 * -p + 5.0 * bce + 5.0 * dice)

    best = min(sum(cost(qi, ti) for ti, qi in enumerate(perm)) for perm in itertools.permutations(range(q), 3))
    got = sum(cost(int(r), int(c)) for r, c in zip(rows, cols))
    assert abs(got - best) < 1e-5
    assert sorted(cols.tolist()) == [0, 1, 2]


def test_weights_deep_supervision_and_zero_targets():
    logits, masks, targets = _inputs()
    crit = SetCriterion(dict(type='HungarianMatcher', num_points=32), num_points=32)
    aux = [dict(pred_logits=logits.clone(), pred_masks=masks.clone()) for _ in range(3)]
    out = crit(dict(pred_logits=logits, pred_masks=masks, aux_outputs=aux), targets)
    assert set(out) == {f'{p}loss_{k}' for p in ['', 'd0.', 'd1.', 'd2.'] for k in ('ce', 'mask', 'dice')}
    # an image without any segment: every query learns void, mask losses are 0 but keep the graph
    masks.requires_grad_(True)
    empty = [dict(labels=torch.zeros(0, dtype=torch.long), masks=torch.zeros(0, 64, 64, dtype=torch.bool))] * 2
    out = crit(dict(pred_logits=logits.requires_grad_(True), pred_masks=masks), empty)
    assert out['loss_mask'].item() == 0.0 and out['loss_dice'].item() == 0.0
    assert out['loss_ce'].item() > 0
    sum(out.values()).backward()
    with pytest.raises(KeyError, match='loss_foo'):
        SetCriterion(dict(type='HungarianMatcher'), losses=[dict(type='loss_foo')])
