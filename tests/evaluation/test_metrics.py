"""PanopticMetric / SemSegMetric / InstanceMaskAPMetric vs panopticapi, the two mIoU formulas, COCOeval."""
import contextlib
import io
import json

import numpy as np
import pytest
import torch
from panoptic_cases import CATEGORY_IDS, CLASSES, IS_THING, make_dataset, write_panopticapi_format
from panopticapi import evaluation as papi
from pycocotools import mask as mask_util
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from ovseg.evaluation import InstanceMaskAPMetric, PanopticMetric, SemSegMetric
from ovseg.evaluation.functional import pq_compute
from ovseg.registry import METRICS

META = {'classes': tuple(CLASSES), 'is_thing': IS_THING, 'category_ids': CATEGORY_IDS}
TO_CONTIG = {c: k for k, c in enumerate(CATEGORY_IDS)}


def _contiguous(segs):
    return [dict(s, category_id=TO_CONTIG[s['category_id']]) for s in segs]


def _samples(cases):
    out = []
    for i, (gt, segs, pred, psegs) in enumerate(cases):
        out.append({
            'img_id': 100 + i,
            'img_path': f'/data/img{i:04d}.jpg',
            'gt_panoptic_seg': {
                'data': torch.from_numpy(gt)[None]
            },
            'segments_info': _contiguous(segs),
            'pred_panoptic_seg': {
                'data': torch.from_numpy(pred)[None]
            },
            'pred_segments_info': _contiguous(psegs)
        })
    return out


@pytest.fixture(scope='module')
def setup(tmp_path_factory):
    cases = make_dataset(seed=3, num_images=30)
    files = write_panopticapi_format(str(tmp_path_factory.mktemp('pan')), cases)
    with contextlib.redirect_stdout(io.StringIO()):
        ref = papi.pq_compute(files['gt_json'], files['pred_json'], files['gt_folder'], files['pred_folder'])
    return cases, files, ref


def _run(metric, samples, batch=4):
    metric.dataset_meta = META
    for i in range(0, len(samples), batch):
        metric.process({}, samples[i:i + batch])
    return metric.evaluate(len(samples))


def test_panoptic_metric_matches_panopticapi(setup):
    cases, _, ref = setup
    metric = METRICS.build(dict(type='PanopticMetric', classwise=True))
    res = _run(metric, _samples(cases))
    for key, name in (('All', ''), ('Things', '_th'), ('Stuff', '_st')):
        for m in ('pq', 'sq', 'rq'):
            assert res[f'panoptic/{m.upper()}{name}'] == pytest.approx(100 * ref[key][m], abs=1e-7)
    for cid, cname in zip(CATEGORY_IDS, CLASSES):
        assert res[f'panoptic/PQ-{cname}'] == pytest.approx(100 * ref['per_class'][cid]['pq'], abs=1e-7)
    # Only touched categories are kept per image: the gathered results stay small.
    assert all(len(r['stats'][0]) <= len(CLASSES) for r in metric.results) or metric.results == []


def test_panoptic_metric_writes_panopticapi_format(setup, tmp_path):
    cases, files, ref = setup
    prefix = str(tmp_path / 'out' / 'preds')
    res = _run(PanopticMetric(outfile_prefix=prefix, format_only=True), _samples(cases))
    assert res == {}
    with open(prefix + '.panoptic.json') as f:
        written = json.load(f)
    assert {c['id'] for c in written['categories']} == set(CATEGORY_IDS)
    ours = pq_compute(files['gt_json'], prefix + '.panoptic.json', files['gt_folder'], prefix + '.panoptic')
    with contextlib.redirect_stdout(io.StringIO()):
        theirs = papi.pq_compute(files['gt_json'], prefix + '.panoptic.json', files['gt_folder'],
                                 prefix + '.panoptic')
    for key in ('All', 'Things', 'Stuff'):
        for m in ('pq', 'sq', 'rq'):
            assert ours[key][m] == pytest.approx(ref[key][m], abs=1e-9)
            assert theirs[key][m] == pytest.approx(ref[key][m], abs=1e-9)


def test_panoptic_metric_errors(setup):
    cases, _, _ = setup
    s = _samples(cases[:1])
    s[0]['pred_segments_info'] = s[0]['pred_segments_info'][1:]
    metric = PanopticMetric()
    metric.dataset_meta = META
    with pytest.raises(ValueError, match='image 100: segment id .* not in its segments_info'):
        metric.process({}, s)
    with pytest.raises(ValueError, match='needs outfile_prefix'):
        PanopticMetric(format_only=True)
    metric.dataset_meta = None
    with pytest.raises(ValueError, match='dataset_meta with "classes"'):
        metric.process({}, _samples(cases[:1]))


# ----------------------------------------------------------------------------------------- semantic mIoU
def _confusion_d2(preds, gts, n, ignore=255):
    conf = np.zeros((n + 1, n + 1), np.int64)
    for p, g in zip(preds, gts):
        g = g.copy()
        g[g == ignore] = n
        conf += np.bincount((n + 1) * p.reshape(-1) + g.reshape(-1),
                            minlength=(n + 1)**2).reshape(n + 1, n + 1)
    return conf


def detectron2_formula(preds, gts, n):
    conf = _confusion_d2(preds, gts, n)
    acc = np.full(n, np.nan)
    iou = np.full(n, np.nan)
    tp = conf.diagonal()[:-1].astype(float)
    pos_gt = np.sum(conf[:-1, :-1], axis=0).astype(float)
    class_weights = pos_gt / np.sum(pos_gt)
    pos_pred = np.sum(conf[:-1, :-1], axis=1).astype(float)
    acc_valid = pos_gt > 0
    acc[acc_valid] = tp[acc_valid] / pos_gt[acc_valid]
    union = pos_gt + pos_pred - tp
    iou_valid = np.logical_and(acc_valid, union > 0)
    iou[iou_valid] = tp[iou_valid] / union[iou_valid]
    return {
        'mIoU': 100 * np.sum(iou[iou_valid]) / np.sum(iou_valid),
        'fwIoU': 100 * np.sum(iou[iou_valid] * class_weights[iou_valid]),
        'mACC': 100 * np.sum(acc[acc_valid]) / np.sum(acc_valid),
        'pACC': 100 * np.sum(tp) / np.sum(pos_gt),
        'iou': 100 * iou
    }


def mmseg_formula(preds, gts, n, ignore=255, nan_to_num=None):
    ti = tu = tp_ = tl = 0
    for p, g in zip(preds, gts):
        p, g = torch.from_numpy(p), torch.from_numpy(g)
        mask = g != ignore
        p, g = p[mask], g[mask]
        inter = p[p == g]
        ai = torch.histc(inter.float(), bins=n, min=0, max=n - 1)
        ap = torch.histc(p.float(), bins=n, min=0, max=n - 1)
        al = torch.histc(g.float(), bins=n, min=0, max=n - 1)
        ti, tu, tp_, tl = ti + ai, tu + ap + al - ai, tp_ + ap, tl + al
    iou = (ti / tu).numpy().astype(np.float64)
    acc = (ti / tl).numpy().astype(np.float64)
    if nan_to_num is not None:
        iou, acc = np.nan_to_num(iou, nan=nan_to_num), np.nan_to_num(acc, nan=nan_to_num)
    return {
        'mIoU': 100 * np.nanmean(iou),
        'mACC': 100 * np.nanmean(acc),
        'pACC': 100 * float(ti.sum() / tl.sum()),
        'iou': 100 * iou
    }


def _sem_cases(seed, n=6, num=8, h=16, w=20):
    rng = np.random.default_rng(seed)
    preds, gts = [], []
    for _ in range(num):
        g = rng.integers(0, n - 2, size=(h, w))  # classes n-2, n-1 never in the GT ...
        g[rng.random((h, w)) < 0.1] = 255
        p = np.where(rng.random((h, w)) < 0.6, g, rng.integers(0, n, size=(h, w)))  # ... but predicted
        p[p == 255] = 0
        p[0, 0] = 1 if g[0, 0] != 1 else 2
        preds.append(p.astype(np.int64))
        gts.append(g.astype(np.int64))
    return preds, gts


def _sem_metric(preds, gts, n, **kw):
    metric = SemSegMetric(classwise=True, **kw)
    metric.dataset_meta = {'classes': [f'k{i}' for i in range(n)]}
    samples = [{
        'img_id': i,
        'pred_sem_seg': {
            'data': torch.from_numpy(p)[None]
        },
        'gt_sem_seg': {
            'data': torch.from_numpy(g)[None]
        }
    } for i, (p, g) in enumerate(zip(preds, gts))]
    metric.process({}, samples)
    return metric.evaluate(len(samples))


@pytest.mark.parametrize('seed', [0, 1, 2])
def test_semseg_detectron2_convention(seed):
    n = 6
    preds, gts = _sem_cases(seed, n)
    ref = detectron2_formula(preds, gts, n)
    res = _sem_metric(preds, gts, n)
    for k in ('mIoU', 'fwIoU', 'mACC', 'pACC'):
        assert res[f'sem_seg/{k}'] == pytest.approx(ref[k], abs=1e-9), k
    for i in range(n):
        v = res[f'sem_seg/IoU-k{i}']
        assert (np.isnan(v) and np.isnan(ref['iou'][i])) or v == pytest.approx(ref['iou'][i], abs=1e-9)


@pytest.mark.parametrize('seed', [0, 1, 2])
@pytest.mark.parametrize('nan_to_num', [None, 0.0])
def test_semseg_mmseg_convention(seed, nan_to_num):
    n = 6
    preds, gts = _sem_cases(seed, n)
    ref = mmseg_formula(preds, gts, n, nan_to_num=nan_to_num)
    res = _sem_metric(preds, gts, n, convention='mmseg', nan_to_num=nan_to_num)
    for k in ('mIoU', 'mACC', 'pACC'):
        assert res[f'sem_seg/{k}'] == pytest.approx(ref[k], abs=1e-4), k  # torch.histc is float32
    d2 = detectron2_formula(preds, gts, n)
    assert res['sem_seg/mIoU'] < d2['mIoU']  # predicted-but-absent classes count as 0 under mmseg


def test_semseg_from_panoptic_gt_and_errors():
    pan = np.array([[0, 5, 5], [9, 9, 7]])
    segs = [{'id': 5, 'category_id': 1}, {'id': 9, 'category_id': 0, 'iscrowd': 1}]
    pred = np.array([[0, 1, 0], [0, 0, 1]])
    metric = SemSegMetric()
    metric.dataset_meta = {'classes': ['a', 'b']}
    metric.process({}, [{
        'img_id': 0,
        'pred_sem_seg': {
            'data': torch.from_numpy(pred)[None]
        },
        'gt_panoptic_seg': {
            'data': torch.from_numpy(pan)[None]
        },
        'segments_info': segs
    }])
    res = metric.evaluate(1)
    assert res['sem_seg/pACC'] == pytest.approx(100 * 3 / 4)
    bad = np.array([[0, 7]])
    with pytest.raises(ValueError, match=r"image 'x': GT labels \[7\] are outside \[0, 2\)"):
        metric.process({}, [{
            'img_id': 'x',
            'pred_sem_seg': {
                'data': torch.zeros(1, 1, 2, dtype=torch.long)
            },
            'gt_sem_seg': {
                'data': torch.from_numpy(bad)[None]
            }
        }])
    with pytest.raises(ValueError, match='convention'):
        SemSegMetric(convention='other')


# ----------------------------------------------------------------------------------------- mask AP
def test_instance_ap_matches_cocoeval():
    rng = np.random.default_rng(0)
    cases = make_dataset(seed=4, num_images=10, h=40, w=56)
    samples, gt_anns, dt_anns, images = [], [], [], []
    for i, (gt, segs, _, _) in enumerate(cases):
        csegs = _contiguous(segs)
        masks, labels, scores = [], [], []
        for s in csegs:
            m = gt == s['id']
            if IS_THING[s['category_id']] and m.any():
                rle = mask_util.encode(np.asfortranarray(m.astype(np.uint8)))
                gt_anns.append({
                    'id': len(gt_anns) + 1,
                    'image_id': i + 1,
                    'category_id': s['category_id'] + 1,
                    'segmentation': rle,
                    'area': float(m.sum()),
                    'iscrowd': s.get('iscrowd', 0),
                    'bbox': mask_util.toBbox(rle).tolist()
                })
            if m.any() and rng.random() < 0.8:  # noisy copies of GT segments, any class
                noisy = m & (rng.random(m.shape) < rng.uniform(0.5, 1.0))
                masks.append(noisy)
                labels.append(s['category_id'] if rng.random() < 0.8 else int(rng.integers(0, len(CLASSES))))
                scores.append(float(rng.random()))
        for _ in range(2):  # random boxes
            m = np.zeros(gt.shape, bool)
            y, x = rng.integers(0, 30), rng.integers(0, 40)
            m[y:y + 10, x:x + 14] = True
            masks.append(m)
            labels.append(int(rng.integers(0, 5)))
            scores.append(float(rng.random()))
        for m, c, sc in zip(masks, labels, scores):
            if IS_THING[c]:
                rle = mask_util.encode(np.asfortranarray(m.astype(np.uint8)))
                dt_anns.append({'image_id': i + 1, 'category_id': c + 1, 'segmentation': rle, 'score': sc})
        images.append({'id': i + 1, 'height': gt.shape[0], 'width': gt.shape[1]})
        samples.append({
            'img_id': i,
            'gt_panoptic_seg': {
                'data': torch.from_numpy(gt)[None]
            },
            'segments_info': csegs,
            'pred_instances': {
                'masks': torch.from_numpy(np.stack(masks)),
                'labels': torch.tensor(labels),
                'scores': torch.tensor(scores)
            }
        })
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO()
        coco.dataset = {
            'images': images,
            'annotations': gt_anns,
            'categories': [{
                'id': k + 1
            } for k, t in enumerate(IS_THING) if t]
        }
        coco.createIndex()
        ev = COCOeval(coco, coco.loadRes(dt_anns), 'segm')
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    metric = InstanceMaskAPMetric()
    metric.dataset_meta = META
    metric.process({}, samples)
    res = metric.evaluate(len(samples))
    for name, v in zip(('mAP', 'AP50', 'AP75', 'APs', 'APm', 'APl'), ev.stats[:6]):
        got = res[f'instance/{name}']
        assert (v < 0 and np.isnan(got)) or got == pytest.approx(100 * v, abs=1e-9), name
    assert 0 < res['instance/mAP'] < 100


def test_instance_ap_without_predictions():
    gt = np.zeros((8, 8), np.int64)
    gt[:4] = 3
    metric = InstanceMaskAPMetric()
    metric.dataset_meta = META
    metric.process({}, [{
        'img_id': 0,
        'gt_panoptic_seg': {
            'data': torch.from_numpy(gt)[None]
        },
        'segments_info': [{
            'id': 3,
            'category_id': 0,
            'iscrowd': 0
        }],
        'pred_instances': {
            'masks': torch.zeros(0, 8, 8, dtype=torch.bool),
            'labels': torch.zeros(0, dtype=torch.long),
            'scores': torch.zeros(0)
        }
    }])
    assert metric.evaluate(1)['instance/mAP'] == 0.0


def test_instance_ap_classwise_keys():
    gt = np.zeros((8, 8), np.int64)
    gt[:4] = 3
    metric = InstanceMaskAPMetric(classwise=True)
    metric.dataset_meta = META
    mask = torch.from_numpy(gt == 3)[None]
    metric.process({}, [{
        'img_id': 0,
        'gt_panoptic_seg': {'data': torch.from_numpy(gt)[None]},
        'segments_info': [{'id': 3, 'category_id': 0, 'iscrowd': 0}],
        'pred_instances': {'masks': mask, 'labels': torch.tensor([0]), 'scores': torch.tensor([0.9])}
    }])
    res = metric.evaluate(1)
    assert res['instance/mAP'] == pytest.approx(100.0) and res[f'instance/AP-{CLASSES[0]}'] == pytest.approx(100.0)
    assert np.isnan(res[f'instance/AP-{CLASSES[1]}'])  # no GT of that class: NaN like detectron2
