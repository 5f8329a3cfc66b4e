"""SEEM spatial (interactive) training: prompt shapes, simulated clicks, the spatial loss and a training step."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from mmengine.structures import InstanceData, PixelData

from ovseg.models.losses.set_criterion import MatchedPredictions
from ovseg.structures import SegDataSample
from projects.seem_ft.seem_ft import (
    InteractiveNoCMetric,
    SEEMSpatialLoss,
    draw_prompt,
    next_click_prompts,
    number_of_clicks,
    sample_spatial_prompts,
)
from tests.projects.seem_ft.tiny_seem import CLASSES, IS_THING, build_tiny, tiny_cfg


def _square(h=40, w=40, y0=8, y1=28, x0=10, x1=30):
    m = torch.zeros(h, w, dtype=torch.bool)
    m[y0:y1, x0:x1] = True
    return m


@pytest.mark.parametrize('shape', ['point', 'polygon', 'scribble'])
def test_prompt_shapes_stay_inside_their_mask(shape):
    mask = _square()
    g = torch.Generator().manual_seed(0)
    for _ in range(20):
        p = draw_prompt(mask, shape, g)
        assert p.any() and not (p & ~mask).any()
        if shape == 'point':
            assert 1 <= int(p.sum()) <= 20  # SEEM's NUM_POINTS
    tiny = torch.zeros(40, 40, dtype=torch.bool)
    tiny[0, :9] = True  # 9 pixels < SEEM's 10: no prompt
    assert not draw_prompt(tiny, shape, g).any()
    with pytest.raises(ValueError, match='circle'):
        draw_prompt(mask, 'circle', g)


def test_sampler_picks_candidates_and_blanks_empty_prompts():
    masks = torch.zeros(12, 40, 40, dtype=torch.bool)
    for k in range(12):
        masks[k, 3 * k:3 * k + 3, :] = True  # 120 pixels each
    masks[11] = False
    masks[11, 0, :5] = True  # too small for a prompt
    g = torch.Generator().manual_seed(1)
    prompts, gts = sample_spatial_prompts(masks, max_candidate=12, generator=g)
    assert prompts.shape == gts.shape == (12, 40, 40)
    empty = ~prompts.flatten(1).any(1)
    assert empty.sum() == 1 and not gts[empty].any()  # its GT is blanked, the loss skips it
    assert all((p & ~m).sum() == 0 for p, m in zip(prompts, gts) if m.any())
    prompts, gts = sample_spatial_prompts(masks, max_candidate=10, shape_probs=dict(point=1.0), generator=g)
    assert len(prompts) == 10 and all(int(p.sum()) <= 20 for p in prompts)
    none, none_gt = sample_spatial_prompts(torch.zeros(0, 40, 40, dtype=torch.bool))
    assert none.shape == (1, 40, 40) and not none.any() and not none_gt.any()
    with pytest.raises(ValueError, match='box'):
        sample_spatial_prompts(masks, shape_probs=dict(box=1.0))


def test_next_click_goes_to_the_centre_of_the_largest_error():
    gt = _square(y0=10, y1=31, x0=10, x1=31)  # 21×21, centre (20, 20)
    pos = torch.zeros(1, 40, 40, dtype=torch.bool)
    pos[0, 12, 12] = True
    neg = torch.zeros_like(pos)
    nothing = torch.full((1, 1, 20, 20), -10.0)  # predicts nothing: a false negative everywhere in the GT
    new_pos, new_neg = next_click_prompts(nothing, [gt[None]], [pos], [neg])
    added = new_pos[0] & ~pos
    assert not new_neg[0].any() and int(added.sum()) == 9  # one click dilated 3×3
    ys, xs = added[0].nonzero().float().mean(0).tolist()
    assert (ys, xs) == (20.0, 20.0)
    # everything predicted: the false positives (background) outweigh the GT's misses → a negative click
    everything = torch.full((1, 1, 40, 40), 10.0)
    new_pos, new_neg = next_click_prompts(everything, [gt[None]], [pos], [neg])
    assert torch.equal(new_pos[0], pos) and int(new_neg[0].sum()) == 9 and not (new_neg[0] & gt).any()
    # good enough (IoU >= 0.925): no click
    exact = torch.where(gt, 10.0, -10.0)[None, None]
    new_pos, new_neg = next_click_prompts(exact, [gt[None]], [pos], [neg])
    assert torch.equal(new_pos[0], pos) and not new_neg[0].any()


def _outputs(gt, good_query):
    """2 prompts × 3 candidates: query ``good_query`` masks prompt 0's GT exactly, the rest noise."""
    torch.manual_seed(0)
    masks = torch.randn(1, 6, 40, 40)
    masks[0, good_query] = torch.where(gt[0], 20.0, -20.0)
    masks[0, 3] = torch.where(gt[1], 20.0, -20.0)
    embs = torch.randn(1, 6, 8) * 0.1  # small logits: the mask costs decide the matching
    prompt_embs = torch.randn(1, 2, 8)
    return dict(pred_masks=masks, pred_smasks=masks.clone().requires_grad_(), pred_smaskembs=embs,
                pred_pspatials=prompt_embs)


def test_spatial_loss_matches_only_own_candidates_and_follows_seems_ce():
    gt = torch.stack([_square(), _square(y0=0, y1=6, x0=0, x1=40)])
    loss = SEEMSpatialLoss(match_points=2048, num_points=2048)
    # query 4 (a candidate of prompt 1) masks prompt 0's object perfectly but may not be matched to prompt 0
    out = _outputs(gt, good_query=4)
    logits = out['pred_smaskembs'][0] @ out['pred_pspatials'][0].t()
    qi, pi = loss.match(logits, out['pred_smasks'][0].detach(), gt)
    assert sorted(zip(pi.tolist(), qi.tolist()))[0][1] in (0, 1, 2)
    assert dict(zip(pi.tolist(), qi.tolist()))[1] == 3  # prompt 1's own perfect candidate
    # with its perfect candidate inside its own group, prompt 0 takes it; CE = SEEM's over all 6 queries
    out = _outputs(gt, good_query=1)
    targets = [dict(labels=torch.zeros(0, dtype=torch.long), masks=torch.zeros(0, 40, 40, dtype=torch.bool),
                    gt_spatial_masks=gt)]
    got = loss(MatchedPredictions(out, targets, [], 1.0, {}))
    logits = out['pred_smaskembs'][0] @ out['pred_pspatials'][0].t()
    ce = -(F.log_softmax(logits.t(), dim=-1)[0, 1] + F.log_softmax(logits.t(), dim=-1)[1, 3]) / 2
    assert got['loss_spatial_ce'].item() == pytest.approx(0.4 * ce.item(), rel=1e-5)
    # matched masks are the GT (only the bilinear edges, where importance sampling looks, are uncertain)
    wrong = dict(out, pred_smasks=-out['pred_smasks'].detach())
    bad = loss(MatchedPredictions(wrong, targets, [], 1.0, {}))
    assert got['loss_spatial_dice'].item() < 0.15 and bad['loss_spatial_dice'].item() > 0.5
    assert got['loss_spatial_bce'].item() < 0.6 * bad['loss_spatial_bce'].item()
    got['loss_spatial_dice'].backward()
    assert out['pred_smasks'].grad[0, [1, 3]].abs().sum() > 0 and out['pred_smasks'].grad[0, [0, 2, 4, 5]].eq(0).all()
    # an empty GT (empty prompt) is skipped; no spatial outputs → zeros
    blank = [dict(targets[0], gt_spatial_masks=torch.zeros_like(gt))]
    assert all(v.item() == 0 for v in loss(MatchedPredictions(out, blank, [], 1.0, {})).values())
    no_spatial = {'pred_masks': out['pred_masks']}
    assert all(v.item() == 0 for v in loss(MatchedPredictions(no_spatial, targets, [], 1.0, {})).values())


def _spatial_model(**spatial):
    cfg = tiny_cfg().model
    criterion = dict(cfg.criterion)
    criterion['losses'] = list(criterion['losses']) + [dict(type='SEEMSpatialLoss', match_points=256,
                                                            num_points=256)]
    model = build_tiny(criterion=criterion, spatial_training=spatial)
    model.set_vocabulary(CLASSES, IS_THING, 'train')
    return model


def _batch(model, size=64):
    imgs, samples = [], []
    for i in range(2):
        g = torch.Generator().manual_seed(i)
        masks = torch.zeros(2, size, size, dtype=torch.bool)
        masks[0, 8:40, 8 + 8 * i:40 + 8 * i] = True
        masks[1] = ~masks[0]
        img = torch.randint(0, 60, (3, size, size), dtype=torch.uint8, generator=g)
        img[0] += masks[0].to(torch.uint8) * 180  # a red square on dark noise
        imgs.append(img)
        ds = SegDataSample(metainfo=dict(img_shape=(size, size), ori_shape=(size, size)))
        ds.gt_instances = InstanceData(labels=torch.tensor([0, 2]), masks=masks)
        samples.append(ds)
    return model.data_preprocessor(dict(inputs=imgs, data_samples=samples), True)


def test_spatial_training_step_reaches_every_spatial_parameter():
    torch.manual_seed(0)
    model = _spatial_model(min_iter=1, max_iter=2, max_candidate=2)
    model.train()
    losses = model(**_batch(model), mode='loss')
    names = {'loss_spatial_ce', 'loss_spatial_bce', 'loss_spatial_dice'}
    layers = model.transformer_decoder.num_layers
    assert names <= set(losses) and {f'd{i}.{n}' for i in range(layers) for n in names} <= set(losses)
    assert all(torch.isfinite(v) and v.item() > 0 for k, v in losses.items() if 'spatial' in k)
    sum(losses.values()).backward()
    params = dict(model.transformer_decoder.named_parameters())
    for name in ('mask_sptial_embed.0', 'mask_sptial_embed.2', 'pn_indicator.weight', 'spatial_embed.weight',
                 'spatial_featured.weight'):  # memories: a click round ran (min_iter=1)
        assert params[name].grad is not None and params[name].grad.abs().sum() > 0, name


def test_spatial_training_config_is_checked():
    with pytest.raises(ValueError, match='SEEMSpatialLoss'):
        build_tiny(spatial_training=dict())
    with pytest.raises(ValueError, match='unknown keys'):
        _spatial_model(rounds=3)
    with pytest.raises(ValueError, match='min_iter'):
        _spatial_model(min_iter=4, max_iter=2)


def test_spatial_training_learns_point_prompts():
    """20 steps on one batch raise the IoU of the point-prompted mask: the loss reaches what predict uses."""
    torch.manual_seed(0)
    model = _spatial_model(max_iter=0, max_candidate=2, shape_probs=dict(point=1.0))
    data = _batch(model)
    img = data['inputs'][0:1]
    gt = data['data_samples'][0].gt_instances.masks[0]

    def point_iou():
        model.eval()
        with torch.no_grad():
            prompt = torch.zeros(1, *gt.shape, dtype=torch.bool)
            prompt[0, 22:26, 22:26] = True
            out = model.decode(model.extract_feat(img), 'train', class_inputs={}, spatial=dict(pos=[prompt]),
                               generator=torch.Generator().manual_seed(0))
            pred = F.interpolate(out['prev_mask'], size=gt.shape, mode='bilinear')[0, 0] > 0
        model.train()
        return float((pred & gt).sum() / (pred | gt).sum())

    before = point_iou()
    params = [p for n, p in model.named_parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-3)
    for _ in range(20):
        losses = model(**data, mode='loss')
        loss = sum(v for k, v in losses.items() if 'spatial' in k)
        opt.zero_grad()
        loss.backward()
        opt.step()
    after = point_iou()
    assert after > 0.8 and after > before + 0.2, (before, after)

    # SEEM's interactive evaluation on the same image: all segments prompted, clicks until IoU 0.9
    model.eval()
    model.test_cfg['interactive_clicks'] = 3
    pan = torch.where(gt, 1, 2)[None]
    ds = SegDataSample(metainfo=dict(img_shape=tuple(gt.shape), segments_info=[
        dict(id=1, category_id=0, iscrowd=0), dict(id=2, category_id=2, iscrowd=0), dict(id=3, category_id=1,
                                                                                           iscrowd=1)]))
    ds.gt_panoptic_seg = PixelData(data=pan)
    model.predict_interactive(model.extract_feat(img), img, [ds])
    ious = ds.pred_interactive_ious
    assert ious.shape == (2, 3) and ious[0, 0] > 0.8  # the crowd segment is not prompted
    metric = InteractiveNoCMetric()
    metric.process(None, [ds.to_dict()])
    scores = metric.compute_metrics(metric.results)
    assert scores['objects'] == 2 and scores['mIoU@1'] == pytest.approx(float(ious[:, 0].mean()) * 100)
    assert 1.0 <= scores['NoC@50'] <= scores['NoC@90'] <= 3.0


def test_number_of_clicks_is_the_first_click_reaching_the_threshold():
    ious = np.array([[0.3, 0.6, 0.86, 0.95], [0.95, 0.95, 0.95, 0.95], [0.1, 0.2, 0.3, 0.4]])
    assert number_of_clicks(ious, 0.85).tolist() == [3.0, 1.0, 4.0]
    assert number_of_clicks(ious, 0.5).tolist() == [2.0, 1.0, 4.0]
    metric = InteractiveNoCMetric(thresholds=(0.85,))
    metric.results = [ious[:2], ious[2:]]
    assert metric.compute_metrics(metric.results) == {'NoC@85': pytest.approx(8 / 3), 'mIoU@1': pytest.approx(45.0),
                                                      'objects': 3.0}
    with pytest.raises(KeyError, match='interactive_clicks'):
        metric.process(None, [dict(img_id=7)])
