"""FTZS matching (projects/inout_vocab/inout_vocab/pseudo_labels.py): exact IoUs, the > 0.5 rule, VOID, parity
with panopticapi's pq_compute_single_core."""
import json

import numpy as np
import pytest

from ovseg.structures.panoptic_format import write_panoptic_png
from projects.inout_vocab.inout_vocab.pseudo_labels import relabel_unlisted_segments, segment_bbox, segment_ious


def test_segment_ious_exact_values():
    gt = np.array([[5, 5, 5, 0],
                   [5, 5, 5, 0],
                   [7, 7, 0, 0],
                   [7, 7, 0, 0]])
    pred = np.array([[1, 1, 0, 0],
                     [1, 1, 2, 2],
                     [3, 3, 2, 2],
                     [3, 0, 2, 2]])
    ious = segment_ious(gt, [5, 7], pred)
    # 5 ∩ 1 = 4 px, |1| = 4, |5| = 6: 4 / 6. 5 ∩ 2 = 1 px; 5 of pred 2's 6 px lie on VOID: 1 / (6 + 6 - 1 - 5)
    assert ious[5] == pytest.approx({1: 4 / 6, 2: 1 / 6})
    assert ious[7] == pytest.approx({3: 3 / 4})  # pred 0 (no segment) is never a candidate
    # without the VOID exclusion pred 2 would score 1 / 11: prove the rule is applied by turning VOID off
    assert segment_ious(gt, [5], pred, void_ids=())[5][2] == pytest.approx(1 / 11)


def test_threshold_exactly_half_is_not_a_match():
    gt = np.array([[4, 4, 4, 4],
                   [9, 9, 9, 9]])
    half = np.array([[1, 1, 0, 0],
                     [0, 0, 0, 0]])  # 2 / (2 + 4 - 2) = 0.5
    segs = [dict(id=1, category_id=3, isthing=True)]
    rec, = relabel_unlisted_segments(gt, [dict(id=9)], half, segs)
    assert rec['iou'] == 0.5 and rec['pred_id'] == 1 and rec['category_id'] is None and rec['isthing'] is None
    more = np.array([[1, 1, 1, 0],
                     [0, 0, 0, 0]])  # 3 / 4
    rec, = relabel_unlisted_segments(gt, [dict(id=9)], more, segs)
    assert rec['iou'] == 0.75 and rec['category_id'] == 3 and rec['isthing'] is True
    rec, = relabel_unlisted_segments(gt, [dict(id=9)], more, segs, iou_threshold=0.8)
    assert rec['category_id'] is None  # the threshold is honoured
    with pytest.raises(ValueError, match=r'\[0.5, 1\)'):
        relabel_unlisted_segments(gt, [dict(id=9)], more, segs, iou_threshold=0.4)


def test_two_candidates_pick_the_larger_and_map_category_ids():
    gt = np.zeros((4, 4), np.int64)
    gt[:2] = 26000  # deleted car, 8 px
    gt[2:] = 7  # listed road
    pred = np.zeros((4, 4), np.int64)
    pred[:2, :3] = 2  # 6 px of the car
    pred[:2, 3] = 5  # 2 px of the car
    pred[2:] = 8
    segs = [dict(id=2, category_id=13, isthing=True), dict(id=5, category_id=11, isthing=True),
            dict(id=8, category_id=0, isthing=False)]
    cat_ids = [7, 8, 11, 12, 13, 17, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 31, 32, 33]
    rec, = relabel_unlisted_segments(gt, [dict(id=7, category_id=7)], pred, segs, category_ids=cat_ids)
    assert rec == dict(id=26000, category_id=26, iou=0.75, pred_id=2, area=8, bbox=[0, 0, 4, 2], iscrowd=0,
                       isthing=True)


def test_void_under_the_prediction_is_excluded_from_the_union():
    gt = np.array([[4, 4, 4, 4],
                   [0, 0, 0, 0]])
    pred = np.ones((2, 4), np.int64)  # covers the segment and the VOID row
    segs = [dict(id=1, category_id=2, isthing=True)]
    rec, = relabel_unlisted_segments(gt, [], pred, segs)
    assert rec['iou'] == 1.0 and rec['category_id'] == 2
    gt_listed = np.array([[4, 4, 4, 4],
                          [9, 9, 9, 9]])  # the same pixels on a listed segment instead of VOID: 4 / 8
    rec, = relabel_unlisted_segments(gt_listed, [dict(id=9)], pred, segs)
    assert rec['iou'] == 0.5 and rec['category_id'] is None


def test_unmatched_segments_are_dropped_and_listed_ones_ignored():
    gt = np.array([[3, 3, 0, 6],
                   [3, 3, 0, 6],
                   [8, 8, 8, 8]])
    pred = np.zeros_like(gt)
    pred[2] = 4
    segs = [dict(id=4, category_id=1, isthing=False)]
    recs = relabel_unlisted_segments(gt, [dict(id=8)], pred, segs)
    assert [r['id'] for r in recs] == [3, 6]  # 8 is listed, 0 is VOID
    assert all(r['category_id'] is None and r['iou'] == 0.0 and r['pred_id'] is None for r in recs)
    assert [r['area'] for r in recs] == [4, 2] and recs[1]['bbox'] == [3, 0, 1, 2]


def test_bad_inputs_raise():
    gt = np.array([[1, 2]])
    with pytest.raises(ValueError, match='differ in size'):
        segment_ious(gt, [1], np.zeros((2, 2), np.int64))
    with pytest.raises(ValueError, match='do not occur'):
        segment_ious(gt, [5], np.zeros((1, 2), np.int64))
    with pytest.raises(ValueError, match='VOID'):
        segment_ious(gt, [0], np.zeros((1, 2), np.int64))
    with pytest.raises(ValueError, match='does not list'):
        relabel_unlisted_segments(gt, [], np.array([[3, 0]]), [])
    with pytest.raises(ValueError, match='outside'):
        relabel_unlisted_segments(gt, [dict(id=2)], np.array([[3, 0]]), [dict(id=3, category_id=4)],
                                  category_ids=[10, 11])
    with pytest.raises(ValueError, match='empty'):
        segment_bbox(np.zeros((2, 2), bool))


def _random_case(seed: int):
    """GT blocks (some VOID) and a prediction = GT shifted by a few pixels with renamed ids."""
    rng = np.random.default_rng(seed)
    h, w = 48, 64
    gt = np.zeros((h, w), np.int64)
    ids = []
    for k in range(12):
        y, x = rng.integers(0, h - 8), rng.integers(0, w - 8)
        gid = 1000 * (k + 1) + int(rng.integers(0, 999))
        gt[y:y + int(rng.integers(6, 20)), x:x + int(rng.integers(6, 24))] = gid
        ids.append(gid)
    gt[rng.random((h, w)) < 0.05] = 0  # scattered VOID
    dy, dx = int(rng.integers(-2, 3)), int(rng.integers(-2, 3))
    pred = np.roll(gt, (dy, dx), axis=(0, 1)) * 3 + 1  # every GT id → a prediction id; VOID → pred id 1
    pred[rng.random((h, w)) < 0.03] = 0  # some unpredicted pixels
    return gt, pred


@pytest.mark.parametrize('seed', [0, 1, 2])
def test_iou_parity_with_panopticapi(tmp_path, seed):
    from panopticapi.evaluation import pq_compute_single_core
    gt, pred = _random_case(seed)
    gt_ids = [int(g) for g in np.unique(gt) if g]
    pred_ids = [int(p) for p in np.unique(pred) if p]
    # one category per GT segment, and each prediction takes the category of the GT it was shifted from:
    # panopticapi's per-category IoU sum is then the IoU of that single pair (when it is a match)
    cat_of_gt = {g: i + 1 for i, g in enumerate(gt_ids)}
    cat_of_pred = {p: cat_of_gt.get((p - 1) // 3, 999) for p in pred_ids}
    categories = {c: dict(id=c, isthing=1) for c in [*cat_of_gt.values(), 999]}
    write_panoptic_png(tmp_path / 'gt' / 'a.png', gt)
    write_panoptic_png(tmp_path / 'pred' / 'a.png', pred)
    gt_ann = dict(image_id=1, file_name='a.png', segments_info=[
        dict(id=g, category_id=cat_of_gt[g], iscrowd=0, area=int((gt == g).sum())) for g in gt_ids])
    pred_ann = dict(image_id=1, file_name='a.png', segments_info=[
        dict(id=p, category_id=cat_of_pred[p]) for p in pred_ids])
    json.dumps([gt_ann, pred_ann])  # plain JSON records, as panopticapi reads them
    stat = pq_compute_single_core(0, [(gt_ann, pred_ann)], str(tmp_path / 'gt'), str(tmp_path / 'pred'),
                                  categories)
    ours = segment_ious(gt, gt_ids, pred)
    matched = 0
    for g in gt_ids:
        mine = ours[g].get(3 * g + 1, 0.0)
        theirs = stat[cat_of_gt[g]]
        if mine > 0.5:
            matched += 1
            assert theirs.tp == 1 and theirs.iou == pytest.approx(mine, abs=1e-12)
        else:
            assert theirs.tp == 0 and theirs.fn == 1
        best = max(ours[g].values(), default=0.0)
        assert best == mine or best <= 0.5  # the panoptic match is the largest-IoU prediction
    assert matched >= 6  # the case really exercises matches
