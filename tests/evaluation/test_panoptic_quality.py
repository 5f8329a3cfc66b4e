"""PQ core and file-based pq_compute: parity with panopticapi on random cases, and error reporting."""
import contextlib
import io
import os.path as osp

import numpy as np
import pytest
from panoptic_cases import CATEGORY_IDS, IS_THING, make_case, make_dataset, write_panopticapi_format
from panopticapi import evaluation as papi

from ovseg.evaluation.functional import PanopticFormatError, PQStats, pq_average, pq_compute, pq_image_stats
from ovseg.structures.panoptic_format import read_panoptic_png, rgb2id, write_panoptic_png

CAT_INDEX = {c: k for k, c in enumerate(CATEGORY_IDS)}


@pytest.fixture(scope='module')
def cases():
    return make_dataset(seed=0, num_images=30)


@pytest.fixture(scope='module')
def files(cases, tmp_path_factory):
    return write_panopticapi_format(str(tmp_path_factory.mktemp('pan')), cases)


@pytest.fixture(scope='module')
def reference(files):
    with contextlib.redirect_stdout(io.StringIO()):
        return papi.pq_compute(files['gt_json'], files['pred_json'], files['gt_folder'], files['pred_folder'])


def assert_same_results(ours, ref, tol=1e-9):
    for name in ('All', 'Things', 'Stuff'):
        assert ours[name]['n'] == ref[name]['n'], name
        for m in ('pq', 'sq', 'rq'):
            assert abs(ours[name][m] - ref[name][m]) <= tol, (name, m, ours[name][m], ref[name][m])
    assert set(ours['per_class']) == set(ref['per_class'])
    for cid, r in ref['per_class'].items():
        for m in ('pq', 'sq', 'rq'):
            assert abs(ours['per_class'][cid][m] - r[m]) <= tol, (cid, m)


def _papi_single(files, index):
    import json
    with open(files['gt_json']) as f:
        gt = json.load(f)
    with open(files['pred_json']) as f:
        pred = json.load(f)
    categories = {c['id']: c for c in gt['categories']}
    pair = [(gt['annotations'][index], pred['annotations'][index])]
    with contextlib.redirect_stdout(io.StringIO()):
        return papi.pq_compute_single_core(0, pair, files['gt_folder'], files['pred_folder'], categories)


def test_cases_cover_the_rules(cases):
    crowd = sum(any(s['iscrowd'] for s in segs) for _, segs, _, _ in cases)
    void = sum((gt == 0).any() for gt, _, _, _ in cases)
    unlisted = sum(
        bool(set(np.unique(gt).tolist()) - {0} - {s['id']
                                                  for s in segs}) for gt, segs, _, _ in cases)
    assert crowd >= 5 and void >= 10 and unlisted >= 5


def test_core_matches_panopticapi_per_image(cases, files):
    for i, (gt, segs, pred, psegs) in enumerate(cases):
        ours = pq_image_stats(gt, segs, pred, psegs, CAT_INDEX, image_id=i)
        ref = _papi_single(files, i)
        for cid, k in CAT_INDEX.items():
            r = ref.pq_per_cat[cid]
            assert (ours.tp[k], ours.fp[k], ours.fn[k]) == (r.tp, r.fp, r.fn), (i, cid)
            assert abs(ours.iou[k] - r.iou) < 1e-12, (i, cid)


def test_core_excuses_void_and_crowd_but_not_unlisted_ids():
    gt = np.zeros((4, 8), np.int64)
    gt[:, 4:] = 7  # crowd of category 1
    gt[:2, :4] = 9  # id in the PNG but not in the JSON: not VOID
    segs = [{'id': 7, 'category_id': 1, 'iscrowd': 1, 'area': 16}]
    pred = np.zeros_like(gt)
    pred[:, 3:] = 5  # 4 px on VOID/unlisted + 16 on crowd of its category: ignored
    pred[:2, :3] = 6  # entirely on the unlisted id 9: a false positive
    psegs = [{'id': 5, 'category_id': 1}, {'id': 6, 'category_id': 2}]
    stats = pq_image_stats(gt, segs, pred, psegs, {1: 0, 2: 1})
    assert stats.fp.tolist() == [0, 1] and stats.tp.sum() == 0 and stats.fn.sum() == 0


def test_core_strict_half_iou_and_gt_area_from_json():
    gt = np.full((1, 8), 3, np.int64)
    gt[0, :4] = 1
    pred = np.zeros_like(gt)
    pred[0, 2:6] = 2  # inter 2, union 6 -> not matched
    segs = [{
        'id': 1,
        'category_id': 0,
        'iscrowd': 0,
        'area': 4
    }, {
        'id': 3,
        'category_id': 1,
        'iscrowd': 0,
        'area': 4
    }]
    stats = pq_image_stats(gt, segs, pred, [{'id': 2, 'category_id': 0}], {0: 0, 1: 1})
    assert (stats.tp[0], stats.fp[0], stats.fn[0]) == (0, 1, 1)
    segs[0]['area'] = 2  # JSON area used: union 4 -> iou 0.5, still not > 0.5
    stats = pq_image_stats(gt, segs, pred, [{'id': 2, 'category_id': 0}], {0: 0, 1: 1})
    assert stats.tp[0] == 0
    segs[0]['area'] = 1  # union 3 -> iou 2/3 -> match
    stats = pq_image_stats(gt, segs, pred, [{'id': 2, 'category_id': 0}], {0: 0, 1: 1})
    assert stats.tp[0] == 1 and stats.iou[0] == pytest.approx(2 / 3)


def test_pq_compute_matches_panopticapi(files, reference, monkeypatch):
    ours = pq_compute(files['gt_json'], files['pred_json'], files['gt_folder'], files['pred_folder'])
    assert_same_results(ours, reference)
    # Against a one-process panopticapi run: same float operations in the same order -> bit-identical.
    monkeypatch.setattr(papi.multiprocessing, 'cpu_count', lambda: 1)
    with contextlib.redirect_stdout(io.StringIO()):
        single = papi.pq_compute(files['gt_json'], files['pred_json'], files['gt_folder'],
                                 files['pred_folder'])
    assert_same_results(ours, single, tol=0.0)


def test_pq_compute_workers_and_default_folders(files, reference):
    ours = pq_compute(files['gt_json'], files['pred_json'], workers=2, chunk_size=4)
    assert_same_results(ours, reference)


@pytest.mark.parametrize('seed', [1, 2])
def test_pq_compute_other_seeds(tmp_path, seed):
    files = write_panopticapi_format(str(tmp_path), make_dataset(seed=seed, num_images=12, h=20, w=30))
    with contextlib.redirect_stdout(io.StringIO()):
        ref = papi.pq_compute(files['gt_json'], files['pred_json'], files['gt_folder'], files['pred_folder'])
    assert_same_results(pq_compute(files['gt_json'], files['pred_json']), ref)


def _one_case():
    gt, segs, pred, psegs = make_case(np.random.default_rng(5))
    return gt, segs, pred, psegs


def test_error_pred_id_missing_from_json():
    gt, segs, pred, psegs = _one_case()
    dropped = psegs[0]['id']
    with pytest.raises(PanopticFormatError,
                       match=rf"image 'im7'.*segment id {dropped} .*not in its segments_info"):
        pq_image_stats(gt, segs, pred, psegs[1:], CAT_INDEX, image_id='im7')


def test_error_json_segment_absent_from_png():
    gt, segs, pred, psegs = _one_case()
    extra = psegs + [{'id': 999, 'category_id': CATEGORY_IDS[0]}]
    with pytest.raises(PanopticFormatError, match=r'image 3: prediction segments \[999\].*absent'):
        pq_image_stats(gt, segs, pred, extra, CAT_INDEX, image_id=3)


def test_error_unknown_category():
    gt, segs, pred, psegs = _one_case()
    bad = [dict(s) for s in psegs]
    bad[0]['category_id'] = 12345
    with pytest.raises(PanopticFormatError, match=rf"segment {bad[0]['id']} has unknown category_id 12345"):
        pq_image_stats(gt, segs, pred, bad, CAT_INDEX, image_id=3)


def test_error_shape_mismatch():
    gt, segs, pred, psegs = _one_case()
    with pytest.raises(PanopticFormatError, match='does not match GT map shape'):
        pq_image_stats(gt, segs, pred[:-1], psegs, CAT_INDEX, image_id=3)


def test_error_no_prediction_for_image(files, tmp_path):
    import json
    with open(files['pred_json']) as f:
        pred = json.load(f)
    pred['annotations'] = pred['annotations'][1:]
    with pytest.raises(Exception, match='no prediction for the image with id: 100'):
        pq_compute(files['gt_json'], pred, pred_folder=files['pred_folder'])
    with pytest.raises(FileNotFoundError, match="with predicted segmentations doesn't exist"):
        pq_compute(files['gt_json'], files['pred_json'], pred_folder=str(tmp_path / 'nope'))


def test_png_roundtrip(tmp_path):
    rng = np.random.default_rng(0)
    ids = rng.integers(0, 1 << 24, size=(5, 7))
    write_panoptic_png(str(tmp_path / 'a.png'), ids)
    assert np.array_equal(read_panoptic_png(str(tmp_path / 'a.png')), ids)
    from PIL import Image
    rgba = np.concatenate([rng.integers(0, 256, (5, 7, 3)), np.full((5, 7, 1), 77)], -1).astype(np.uint8)
    Image.fromarray(rgba).save(tmp_path / 'b.png')
    assert np.array_equal(read_panoptic_png(str(tmp_path / 'b.png')), rgb2id(rgba[..., :3]))
    with pytest.raises(FileNotFoundError):
        read_panoptic_png(str(tmp_path / 'missing.png'))
    Image.fromarray(rgba[..., 0]).save(tmp_path / 'gray.png')
    with pytest.raises(ValueError, match='8-bit RGB'):
        read_panoptic_png(str(tmp_path / 'gray.png'))


def test_pq_average_empty_split_is_nan():
    stats = PQStats.zeros(2)
    stats.tp[0], stats.iou[0] = 1, 0.75
    res, per_class = pq_average(stats, [4, 5], [True, False], isthing=False)
    assert res['n'] == 0 and np.isnan(res['pq']) and per_class[5] == {'pq': 0.0, 'sq': 0.0, 'rq': 0.0}
    res, _ = pq_average(stats, [4, 5], [True, False], isthing=True)
    assert res == {'pq': 0.75, 'sq': 0.75, 'rq': 1.0, 'n': 1}


def test_sparse_roundtrip():
    s = PQStats.zeros(6)
    s.tp[2], s.fp[4], s.iou[2] = 3, 1, 2.5
    back = PQStats.from_sparse(6, s.to_sparse())
    assert all(np.array_equal(getattr(back, k), getattr(s, k)) for k in ('iou', 'tp', 'fp', 'fn'))
    assert len(s.to_sparse()[0]) == 2


def test_is_thing_constant_matches_json(files):
    import json
    with open(files['gt_json']) as f:
        cats = json.load(f)['categories']
    assert [bool(c['isthing']) for c in cats] == IS_THING
    assert osp.isdir(files['gt_folder'])


def _brute_pairs(gt, pred):
    keys, counts = np.unique(np.stack([gt.ravel(), pred.ravel()], 1), axis=0, return_counts=True)
    return {(int(a), int(b)): int(c) for (a, b), c in zip(keys, counts)}


@pytest.mark.parametrize('scale', [1, 1 << 28, 1 << 40, -1])
def test_pair_intersections_all_code_paths(scale):
    """Packed sort (small ids), binary search (large ids), generic unique (huge / negative ids)."""
    from ovseg.evaluation.functional import pair_intersections
    rng = np.random.default_rng(abs(scale) % 97)
    gt = rng.integers(0, 6, size=(30, 40)).repeat(3, axis=1)
    pred = rng.integers(0, 5, size=(30, 40)).repeat(3, axis=0)[:30].repeat(3, axis=1)
    gt, pred = gt.astype(np.int64) * scale + 3, pred.astype(np.int64) * scale
    gu, pu, pg, pp, pn = pair_intersections(gt, pred)
    got = {(int(gu[a]), int(pu[b])): int(c) for a, b, c in zip(pg, pp, pn)}
    assert got == _brute_pairs(gt, pred)
    assert list(zip(gu[pg].tolist(), pu[pp].tolist())) == sorted(got)  # panopticapi's (gt, pred) order
