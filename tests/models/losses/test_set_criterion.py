"""SetCriterion, its loss terms and the HungarianMatcher: parity with transformers' Mask2FormerLoss (final and
deep-supervision predictions), optimal matching (brute force), exact CE with void weighting, weights, extra named
terms, DDP normalisation, padding, zero-target images, point sampling."""
import itertools

import pytest
import torch
import torch.nn.functional as F
from transformers import Mask2FormerConfig
from transformers.models.mask2former.modeling_mask2former import Mask2FormerLoss

from ovseg.models.losses import ClassCELoss, HungarianMatcher, SetCriterion, SetLossTerm
from ovseg.models.losses import set_criterion as set_criterion_module
from ovseg.models.utils.point_sample import get_uncertain_point_coords_with_randomness, point_sample
from ovseg.registry import MODELS

UNIT_LOSSES = [dict(type='ClassCELoss', loss_weight=1.0, eos_coef=0.1), dict(type='MaskBCELoss', loss_weight=1.0),
               dict(type='MaskDiceLoss', loss_weight=1.0)]


def _batch(seed=0, bs=2, q=6, c=4, h=16, n=(3, 2)):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(bs, q, c + 1, generator=g)
    masks = torch.randn(bs, q, h, h, generator=g)
    targets = [dict(labels=torch.randint(0, c, (k,), generator=g),
                    masks=torch.rand(k, 4 * h, 4 * h, generator=g) > 0.5) for k in n]
    return logits, masks, targets


def _unit_criterion(points=64, **kw):
    return SetCriterion(HungarianMatcher(2.0, 5.0, 5.0, num_points=points), losses=UNIT_LOSSES, num_points=points,
                        **kw)


def test_deep_supervision_matches_transformers_mask2former_loss():
    """transformers computes the final prediction's losses, then each auxiliary one, drawing the matcher's and
    the uncertainty sampler's random points in the same order as ours, so one seed gives identical numbers
    for every ``d{i}.`` entry (their ``*_{i}`` keys)."""
    logits, masks, targets = _batch(seed=3)
    aux = [dict(pred_logits=logits + 0.3 * i, pred_masks=masks.flip(-1) * (1 + i)) for i in range(3)]
    cfg = Mask2FormerConfig(num_labels=4, no_object_weight=0.1, train_num_points=64, oversample_ratio=3.0,
                            importance_sample_ratio=0.75, class_weight=2.0, mask_weight=5.0, dice_weight=5.0)
    torch.manual_seed(7)
    ours = _unit_criterion()(dict(pred_logits=logits, pred_masks=masks, aux_outputs=aux), targets)
    torch.manual_seed(7)
    ref = Mask2FormerLoss(cfg, weight_dict={})(
        masks, logits, [t['masks'].float() for t in targets], [t['labels'] for t in targets],
        auxiliary_predictions=[dict(masks_queries_logits=a['pred_masks'], class_queries_logits=a['pred_logits'])
                               for a in aux])
    names = dict(ce='loss_cross_entropy', mask='loss_mask', dice='loss_dice')
    for i in range(3):
        for short, theirs in names.items():
            torch.testing.assert_close(ours[f'd{i}.loss_{short}'], ref[f'{theirs}_{i}'], atol=1e-6, rtol=1e-5)
    for short, theirs in names.items():
        torch.testing.assert_close(ours[f'loss_{short}'], ref[theirs], atol=1e-6, rtol=1e-5)


def _pair_cost(logit_row, mask_logits, label, tgt_mask, coords):
    """Independent per-pair cost (class 2, BCE 5, dice 5) on the given points (loops, no batching tricks)."""
    x = F.grid_sample(mask_logits[None, None], 2 * coords[None, :, None] - 1, align_corners=False).flatten()
    t = F.grid_sample(tgt_mask[None, None].float(), 2 * coords[None, :, None] - 1, align_corners=False).flatten()
    bce = F.binary_cross_entropy_with_logits(x, t)
    s = x.sigmoid()
    dice = 1 - (2 * (s * t).sum() + 1) / (s.sum() + t.sum() + 1)
    return float(-2.0 * logit_row.softmax(-1)[label] + 5.0 * bce + 5.0 * dice)


@pytest.mark.parametrize('seed,num_targets', [(0, 1), (1, 2), (2, 3), (3, 4), (4, 5)])
def test_matcher_is_optimal_on_random_masks(seed, num_targets):
    """Brute force over all injective assignments (5 queries) with the matcher's own random points."""
    g = torch.Generator().manual_seed(seed)
    q, points = 5, 40
    logits = torch.randn(1, q, 4, generator=g)
    masks = torch.randn(1, q, 8, 8, generator=g) * 3
    tgt = dict(labels=torch.randint(0, 3, (num_targets,), generator=g),
               masks=torch.rand(num_targets, 16, 16, generator=g) > 0.5)
    torch.manual_seed(100 + seed)
    (rows, cols), = HungarianMatcher(num_points=points)(dict(pred_logits=logits, pred_masks=masks), [tgt])
    torch.manual_seed(100 + seed)
    coords = torch.rand(1, points, 2)[0]  # the matcher draws exactly this per image
    cost = [[_pair_cost(logits[0, i], masks[0, i], tgt['labels'][j], tgt['masks'][j], coords)
             for j in range(num_targets)] for i in range(q)]
    best = min(sum(cost[qi][ti] for ti, qi in enumerate(p)) for p in itertools.permutations(range(q), num_targets))
    assert len(rows) == num_targets and sorted(cols.tolist()) == list(range(num_targets))
    assert len(set(rows.tolist())) == num_targets
    assert abs(sum(cost[int(r)][int(c)] for r, c in zip(rows, cols)) - best) < 1e-4


def test_ce_is_exact_with_void_weight_and_an_empty_image():
    logits, masks, targets = _batch(seed=5, n=(0, 3))
    crit = _unit_criterion()
    indices = crit.matcher(dict(pred_logits=logits, pred_masks=masks), targets)
    assert indices[0][0].numel() == 0
    target_classes = torch.full((2, 6), 4)
    target_classes[1, indices[1][0]] = targets[1]['labels'][indices[1][1]]
    weight = torch.tensor([1.0, 1.0, 1.0, 1.0, 0.1])
    nll = -logits.log_softmax(-1).gather(-1, target_classes[..., None])[..., 0]
    expected = (nll * weight[target_classes]).sum() / weight[target_classes].sum()
    matched = set_criterion_module.MatchedPredictions(dict(pred_logits=logits, pred_masks=masks), targets, indices,
                                                      5.0, crit.sampling)
    torch.testing.assert_close(ClassCELoss(eos_coef=0.1)(matched), expected)
    out = crit(dict(pred_logits=logits.requires_grad_(True), pred_masks=masks.requires_grad_(True)), targets)
    assert all(torch.isfinite(v) for v in out.values()) and out['loss_mask'] > 0
    sum(out.values()).backward()
    assert masks.grad[0].abs().sum() == 0 and masks.grad[1].abs().sum() > 0  # image 0 has nothing to match


def test_weights_are_applied_and_total_is_plain_sum():
    logits, masks, targets = _batch(seed=6)
    aux = [dict(pred_logits=logits * 0.5, pred_masks=masks * 0.5)]
    outputs = dict(pred_logits=logits, pred_masks=masks, aux_outputs=aux)
    torch.manual_seed(1)
    unit = _unit_criterion(points=32)(outputs, targets)
    weighted = MODELS.build(dict(type='SetCriterion', num_points=32,  # default terms: Mask2Former's 2 / 5 / 5
                                 matcher=dict(type='HungarianMatcher', num_points=32)))
    assert weighted.loss_weights == dict(loss_ce=2.0, loss_mask=5.0, loss_dice=5.0)
    torch.manual_seed(1)
    out = weighted(outputs, targets)
    w = dict(ce=2.0, mask=5.0, dice=5.0)
    assert set(out) == {f'{p}loss_{k}' for p in ('', 'd0.') for k in w}
    for key, value in out.items():
        torch.testing.assert_close(value, unit[key] * w[key.rsplit('_', 1)[1]])



def test_num_masks_is_averaged_over_ranks_and_clamped(monkeypatch):
    crit = _unit_criterion()
    targets = [dict(labels=torch.tensor([1, 2, 3]), masks=torch.zeros(3, 4, 4, dtype=torch.bool))]
    dist = set_criterion_module.dist
    monkeypatch.setattr(dist, 'is_available', lambda: True)
    monkeypatch.setattr(dist, 'is_initialized', lambda: True)
    monkeypatch.setattr(dist, 'get_world_size', lambda: 4)

    def all_reduce(t):  # the other three ranks hold 0, 1 and 4 masks
        t += 5.0
    monkeypatch.setattr(dist, 'all_reduce', all_reduce)
    assert crit.num_masks(targets, 'cpu') == pytest.approx((3 + 5) / 4)
    monkeypatch.setattr(dist, 'all_reduce', lambda t: None)
    assert crit.num_masks([dict(labels=torch.zeros(0, dtype=torch.long))], 'cpu') == 1.0


def test_targets_of_different_sizes_are_padded_like_the_batch():
    logits, masks, targets = _batch(seed=8)
    small = [dict(labels=t['labels'], masks=t['masks'][:, :40, :50]) for t in targets]
    padded = [dict(labels=t['labels'], masks=F.pad(t['masks'], (0, 14, 0, 24))) for t in small]
    small[1] = padded[1]  # one image already at the batch size, one not
    crit = _unit_criterion()
    torch.manual_seed(2)
    a = crit(dict(pred_logits=logits, pred_masks=masks), small)
    torch.manual_seed(2)
    b = crit(dict(pred_logits=logits, pred_masks=masks), padded)
    for k in a:
        torch.testing.assert_close(a[k], b[k])


def test_all_images_empty_under_bf16_autocast():
    logits, masks, _ = _batch(seed=9)
    empty = [dict(labels=torch.zeros(0, dtype=torch.long), masks=torch.zeros(0, 64, 64, dtype=torch.bool))] * 2
    crit = SetCriterion(dict(type='HungarianMatcher', num_points=32), num_points=32)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        out = crit(dict(pred_logits=logits.bfloat16().requires_grad_(True),
                        pred_masks=masks.bfloat16().requires_grad_(True),
                        aux_outputs=[dict(pred_logits=logits, pred_masks=masks)]), empty)
    assert out['loss_ce'].dtype == torch.float32 and out['loss_ce'] > 0
    assert out['loss_mask'] == 0 and out['d0.loss_dice'] == 0
    # every query is void: CE is the mean void NLL (the void weight cancels in the weighted mean)
    expected = -logits.bfloat16().float().log_softmax(-1)[..., -1].mean() * 2.0
    torch.testing.assert_close(out['loss_ce'], expected, atol=1e-4, rtol=1e-4)


def test_point_sample_and_uncertain_points():
    img = torch.arange(12.0).view(1, 1, 3, 4)
    centres = torch.tensor([[[(0 + 0.5) / 4, (0 + 0.5) / 3], [(3 + 0.5) / 4, (2 + 0.5) / 3]]])
    assert point_sample(img, centres, align_corners=False).flatten().tolist() == pytest.approx([0.0, 11.0], abs=1e-5)
    logits = torch.randn(3, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    torch.manual_seed(0)
    coords = get_uncertain_point_coords_with_randomness(logits, lambda x: -x.abs(), 20, 3.0, 0.75)
    assert coords.shape == (3, 20, 2) and coords.min() >= 0 and coords.max() <= 1
    # the 15 importance points are the 15 most uncertain of the 60 over-sampled candidates
    torch.manual_seed(0)
    cand = torch.rand(3, 60, 2)
    unc = -point_sample(logits, cand, align_corners=False).abs()[:, 0]
    top = torch.topk(unc, 15, dim=1).indices
    torch.testing.assert_close(coords[:, :15], torch.gather(cand, 1, top[..., None].expand(-1, -1, 2)))
    with pytest.raises(ValueError):
        get_uncertain_point_coords_with_randomness(logits, lambda x: -x.abs(), 20, 0.5, 0.75)


def test_chunked_target_sampling_changes_nothing():
    logits, masks, targets = _batch(seed=10, n=(5, 4))
    outs = []
    for chunk in (1, 3, 32):
        crit = SetCriterion(HungarianMatcher(num_points=48, target_chunk=chunk), num_points=48, target_chunk=chunk)
        torch.manual_seed(4)
        outs.append(crit(dict(pred_logits=logits, pred_masks=masks), targets))
    for other in outs[1:]:
        for k in outs[0]:
            torch.testing.assert_close(outs[0][k], other[k])


@MODELS.register_module(force=True)
class _MatchedQueryCount(SetLossTerm):
    """A project-style extra term: reads the matched pairs and the model's own output keys."""

    default_name = 'loss_matched_energy'

    def forward(self, matched):
        batch_idx, src_idx = matched.src_permutation()
        return matched.outputs['extra_scores'][batch_idx, src_idx].sum() / matched.num_masks


def test_extra_named_terms_aux_switch_and_errors():
    logits, masks, targets = _batch(seed=11)
    scores = torch.randn(2, 6)
    aux = [dict(pred_logits=logits * 0.5, pred_masks=masks * 0.5, extra_scores=scores * 2)]
    outputs = dict(pred_logits=logits, pred_masks=masks, extra_scores=scores, aux_outputs=aux)
    crit = SetCriterion(dict(type='HungarianMatcher', num_points=32), num_points=32, losses=UNIT_LOSSES + [
        dict(type='_MatchedQueryCount', loss_weight=0.5, apply_to_aux=False)])
    torch.manual_seed(3)
    out = crit(outputs, targets)
    assert 'loss_matched_energy' in out and 'd0.loss_matched_energy' not in out and 'd0.loss_ce' in out
    torch.manual_seed(3)
    indices = crit.matcher(outputs, targets)
    expected = sum(scores[b, src].sum() for b, (src, _) in enumerate(indices)) / 5.0 * 0.5
    torch.testing.assert_close(out['loss_matched_energy'], expected)
    with pytest.raises(ValueError, match='unique'):
        SetCriterion(dict(type='HungarianMatcher'), losses=[dict(type='MaskBCELoss'), dict(type='MaskBCELoss')])
    with pytest.raises(KeyError):
        SetCriterion(dict(type='HungarianMatcher'), losses=[dict(type='NoSuchLoss')])


def test_matches_transformers_mask2former_loss():
    """Same inputs and the same random stream: both draw matcher points per image, then uncertainty points,
    in the same order, so with one seed the assignments and all three losses must coincide."""
    logits, masks, targets = _batch()
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
    logits, masks, targets = _batch()
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
