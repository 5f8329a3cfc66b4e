"""Post-processing on hand-built predictions (FC-CLIP / Mask2Former inference rules, reference §1.6)."""
import math

import pytest
import torch

from ovseg.models.utils.postprocess import (
    instance_inference,
    panoptic_inference,
    sem_seg_postprocess,
    semantic_inference,
)

BIG = 20.0  # mask logit: sigmoid(20) ~ 1, sigmoid(-20) ~ 0


def _cls(probs):
    """Log-probabilities from rows of probabilities (last column = void)."""
    return torch.tensor(probs, dtype=torch.float32).clamp_min(1e-8).log()


def _mask(h, w, box):
    m = torch.full((h, w), -BIG)
    y0, y1, x0, x1 = box
    m[y0:y1, x0:x1] = BIG
    return m


def test_panoptic_basic_assignment_void_and_ids():
    # classes: 0 = thing (person), 1 = stuff (sky); 3 queries + 1 void query
    is_thing = [True, False]
    cls = _cls([
        [0.9, 0.05, 0.05],  # q0 person, left half
        [0.1, 0.8, 0.1],  # q1 sky, right half
        [0.05, 0.05, 0.9],  # q2 void -> dropped
        [0.7, 0.2, 0.1]
    ])  # q3 person, bottom-left corner overlapping q0
    masks = torch.stack([
        _mask(4, 4, (0, 4, 0, 2)),
        _mask(4, 4, (0, 4, 2, 4)),
        _mask(4, 4, (0, 4, 0, 4)),
        _mask(4, 4, (3, 4, 0, 1))
    ])
    pan, info = panoptic_inference(cls, masks, is_thing, object_mask_threshold=0.0, overlap_threshold=0.8)
    assert pan.dtype == torch.long and pan.shape == (4, 4)
    # q3 loses its only pixel to q0 (0.9 > 0.7): visible 0 -> dropped; q0 gets left half, q1 right half
    assert [(s['id'], s['category_id'], s['isthing']) for s in info] == [(1, 0, True), (2, 1, False)]
    assert info[0]['score'] == pytest.approx(0.9, abs=1e-5)
    assert info[1]['score'] == pytest.approx(0.8, abs=1e-5)
    assert (pan[:, :2] == 1).all() and (pan[:, 2:] == 2).all()


def test_panoptic_overlap_threshold_drops_occluded_segment():
    is_thing = [True, True]
    cls = _cls([[0.9, 0.05, 0.05], [0.05, 0.6, 0.35]])
    # q1 covers 4 pixels, 2 of which q0 (higher score) takes -> kept fraction 0.5 < 0.8 -> dropped
    masks = torch.stack([_mask(2, 4, (0, 2, 0, 2)), _mask(2, 4, (0, 1, 0, 4))])
    pan, info = panoptic_inference(cls, masks, is_thing, overlap_threshold=0.8)
    assert [s['category_id'] for s in info] == [0]
    assert int((pan == 1).sum()) == 4 and int((pan == 0).sum()) == 4
    # with a permissive threshold it is kept with its 2 visible pixels
    pan, info = panoptic_inference(cls, masks, is_thing, overlap_threshold=0.4)
    assert [s['category_id'] for s in info] == [0, 1]
    assert int((pan == 2).sum()) == 2


def test_panoptic_merges_stuff_of_same_class_but_not_things():
    is_thing = [True, False]
    cls = _cls([[0.05, 0.9, 0.05], [0.05, 0.7, 0.25], [0.8, 0.1, 0.1], [0.75, 0.15, 0.1]])
    masks = torch.stack([
        _mask(2, 8, (0, 2, 0, 2)),
        _mask(2, 8, (0, 2, 2, 4)),
        _mask(2, 8, (0, 2, 4, 6)),
        _mask(2, 8, (0, 2, 6, 8))
    ])
    pan, info = panoptic_inference(cls, masks, is_thing)
    assert len(info) == 3
    stuff = [s for s in info if not s['isthing']]
    assert len(stuff) == 1 and stuff[0]['score'] == pytest.approx(0.9, abs=1e-5)
    assert int((pan == stuff[0]['id']).sum()) == 8
    things = [s for s in info if s['isthing']]
    assert sorted(int((pan == s['id']).sum()) for s in things) == [4, 4]
    assert sorted(pan.unique().tolist()) == [1, 2, 3]


def test_panoptic_object_mask_threshold_and_low_confidence_pixels():
    is_thing = [True]
    cls = _cls([[0.6, 0.4]])
    m = _mask(2, 2, (0, 1, 0, 2))
    pan, info = panoptic_inference(cls, m[None], is_thing, object_mask_threshold=0.8)
    assert info == [] and int(pan.sum()) == 0
    # pixels whose mask prob is < 0.5 stay VOID even though the query wins the argmax
    pan, info = panoptic_inference(cls, m[None], is_thing, object_mask_threshold=0.0)
    assert len(info) == 1 and pan.tolist() == [[1, 1], [0, 0]]


def test_panoptic_rejects_bad_is_thing():
    with pytest.raises(ValueError, match='is_thing'):
        panoptic_inference(_cls([[0.5, 0.5]]), torch.zeros(1, 2, 2), [True, False])


def test_semantic_inference_numbers():
    cls = _cls([[0.5, 0.3, 0.2], [0.1, 0.6, 0.3]])
    masks = torch.stack([torch.tensor([[BIG, -BIG]]), torch.tensor([[0.0, BIG]])])
    sem = semantic_inference(cls, masks)
    assert sem.shape == (2, 1, 2)
    # pixel (0,0): 0.5*1 + 0.1*0.5 for class 0; 0.3*1 + 0.6*0.5 for class 1
    assert sem[:, 0, 0].tolist() == pytest.approx([0.55, 0.6], abs=1e-5)
    assert sem[:, 0, 1].tolist() == pytest.approx([0.1, 0.6], abs=1e-5)
    # logits and log-probs give the same answer (softmax inside)
    raw = torch.tensor([[2.0, 1.0, 0.0]])
    assert torch.allclose(semantic_inference(raw, masks[:1]),
                          semantic_inference(raw.log_softmax(-1), masks[:1]))


def test_instance_inference_topk_scores_and_thing_only():
    is_thing = [True, False]
    cls = _cls([[0.6, 0.3, 0.1], [0.2, 0.7, 0.1]])
    m0 = torch.tensor([[BIG, 0.5], [-BIG, -BIG]])  # binary: 2 px, sigmoid 1 and 0.6225
    m1 = torch.tensor([[BIG, BIG], [BIG, BIG]])
    out = instance_inference(cls, torch.stack([m0, m1]), is_thing, topk=3)
    assert out['labels'].tolist() == [1, 0, 1]
    assert out['query_index'].tolist() == [1, 0, 0]
    mean0 = (1.0 + 1 / (1 + math.exp(-0.5))) / 2
    assert out['scores'].tolist() == pytest.approx([0.7, 0.6 * mean0, 0.3 * mean0], abs=1e-4)
    assert out['masks'].dtype == torch.bool and out['masks'][1].sum() == 2
    thing = instance_inference(cls, torch.stack([m0, m1]), is_thing, topk=3, thing_only=True)
    assert thing['labels'].tolist() == [0] and thing['query_index'].tolist() == [0]
    # topk larger than Q*C is clipped
    assert len(instance_inference(cls, torch.stack([m0, m1]), topk=100)['labels']) == 4


def test_sem_seg_postprocess_crops_padding_then_resizes():
    res = torch.zeros(2, 8, 8)
    res[:, :4, :6] = 1.0  # valid image 4x6, rest is padding
    res[1, :4, :3] = 3.0
    out = sem_seg_postprocess(res, (4, 6), 8, 12)
    assert out.shape == (2, 8, 12)
    assert torch.allclose(out[0], torch.ones(8, 12))  # no padding leaked in
    assert out[1, :, :5].eq(3.0).all() and out[1, :, 7:].eq(1.0).all()
    single = sem_seg_postprocess(res[0], (4, 6), 2, 3)
    assert single.shape == (2, 3)
