"""Instance AP protocols: COCO AP against an instance JSON (vs pycocotools), Cityscapes AP (vs cityscapesScripts)."""
import contextlib
import copy
import io
import json

import cv2
import numpy as np
import pytest
import torch
from PIL import Image
from pycocotools import mask as mask_util
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from ovseg.evaluation import CityscapesInstanceAPMetric, CocoInstanceAPMetric

H, W = 40, 50


def _poly(x0, y0, x1, y1):
    return [[x0, y0, x1, y0, x1, y1, x0, y1]]


@pytest.fixture()
def coco_files(tmp_path):
    """Three images; overlapping persons (impossible in panoptic PNGs), a crowd RLE, polygons, two categories."""
    crowd = np.zeros((H, W), np.uint8)
    crowd[25:38, 2:20] = 1
    crowd_rle = mask_util.encode(np.asfortranarray(crowd))
    crowd_rle['counts'] = crowd_rle['counts'].decode()
    anns = [
        dict(image_id=11, category_id=1, segmentation=_poly(5, 5, 25, 30), iscrowd=0),
        dict(image_id=11, category_id=1, segmentation=_poly(15, 10, 40, 35), iscrowd=0),  # overlaps the first
        dict(image_id=11, category_id=3, segmentation=_poly(30, 2, 48, 12), iscrowd=0),
        dict(image_id=12, category_id=3, segmentation=_poly(2, 2, 30, 20), iscrowd=0),
        dict(image_id=12, category_id=1, segmentation=crowd_rle, iscrowd=1),
        dict(image_id=13, category_id=18, segmentation=_poly(10, 10, 20, 18), iscrowd=0),
    ]
    for i, a in enumerate(anns, start=1):
        a['id'] = i
        rle = COCO.annToRLE(type('C', (), {'imgs': {a['image_id']: dict(height=H, width=W)}})(), a)
        a['area'] = float(mask_util.area(rle))
        a['bbox'] = mask_util.toBbox(rle).tolist()
    doc = dict(images=[dict(id=i, height=H, width=W, file_name=f'{i}.jpg') for i in (11, 12, 13)],
               categories=[dict(id=1, name='person'), dict(id=3, name='car'), dict(id=18, name='dog')],
               annotations=anns)
    path = tmp_path / 'instances_val.json'
    path.write_text(json.dumps(doc))
    return str(path)


META = dict(classes=('person', 'car', 'dog', 'grass'), is_thing=[True, True, True, False],
            category_ids=[1, 3, 18, 200])


def _box_mask(x0, y0, x1, y1, h=H, w=W):
    m = np.zeros((h, w), bool)
    m[y0:y1, x0:x1] = True
    return m


def _coco_predictions():
    rng = np.random.default_rng(0)
    preds = {
        11: [(_box_mask(5, 5, 26, 31), 0, 0.9), (_box_mask(16, 10, 41, 34), 0, 0.8),
             (_box_mask(30, 2, 45, 12), 1, 0.7), (_box_mask(0, 30, 10, 40), 1, 0.6),
             (_box_mask(0, 0, 50, 40), 3, 0.99)],  # last: stuff, dropped
        12: [(_box_mask(2, 2, 28, 20), 1, 0.95), (_box_mask(3, 26, 18, 37), 0, 0.5),
             (_box_mask(30, 20, 45, 39), 0, 0.4)],
        13: [(_box_mask(10, 10, 21, 19), 2, float(rng.uniform(0.1, 0.9))), (_box_mask(30, 25, 40, 35), 2, 0.2)],
    }
    samples = []
    for img_id, items in preds.items():
        samples.append(dict(img_id=img_id, pred_instances=dict(
            masks=torch.from_numpy(np.stack([m for m, _, _ in items])),
            labels=torch.tensor([c for _, c, _ in items]), scores=torch.tensor([s for _, _, s in items]))))
    return samples, preds


def _pycocotools_reference(ann_file, preds, img_ids):
    results = []
    for img_id, items in preds.items():
        if img_id not in img_ids:
            continue
        for m, c, s in items:
            if not META['is_thing'][c]:
                continue
            rle = mask_util.encode(np.array(m[:, :, None], order='F', dtype='uint8'))[0]  # detectron2 idiom
            rle['counts'] = rle['counts'].decode('utf-8')
            results.append(dict(image_id=img_id, category_id=META['category_ids'][c], segmentation=rle, score=s))
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(ann_file)
        ev = COCOeval(gt, gt.loadRes(results), iouType='segm')
        ev.params.imgIds = sorted(img_ids)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return ev.stats[:6]


@pytest.mark.parametrize('img_ids', [(11, 12, 13), (11, 12)])
def test_coco_instance_ap_matches_pycocotools(coco_files, img_ids):
    samples, preds = _coco_predictions()
    metric = CocoInstanceAPMetric(ann_file=coco_files, classwise=True)
    metric.dataset_meta = META
    metric.process({}, [s for s in samples if s['img_id'] in img_ids])
    res = metric.evaluate(len(img_ids))
    ref = _pycocotools_reference(coco_files, preds, img_ids)
    for name, v in zip(('mAP', 'AP50', 'AP75', 'APs', 'APm', 'APl'), ref):
        got = res[f'instance/{name}']
        assert (np.isnan(got) and v < 0) or got == pytest.approx(100 * v, abs=1e-9), name
    assert 0 < res['instance/mAP'] < 100 and 'instance/AP-person' in res


def test_coco_instance_ap_errors(coco_files):
    samples, _ = _coco_predictions()
    metric = CocoInstanceAPMetric(ann_file=coco_files)
    metric.dataset_meta = dict(META, category_ids=[1, 3, 99, 200])
    metric.process({}, samples[:1])
    with pytest.raises(ValueError, match=r'thing category ids \[99\] .* not categories of .*instances_val.json'):
        metric.compute_metrics(metric.results)
    metric = CocoInstanceAPMetric(ann_file=coco_files)
    metric.dataset_meta = META
    metric.process({}, [dict(samples[0], img_id=77)])
    with pytest.raises(KeyError, match='image id 77 is not in'):
        metric.compute_metrics(metric.results)
    metric = CocoInstanceAPMetric(ann_file=coco_files)
    metric.dataset_meta = META
    small = dict(samples[0]['pred_instances'], masks=samples[0]['pred_instances']['masks'][:, :20])
    metric.process({}, [dict(samples[0], pred_instances=small)])
    with pytest.raises(ValueError, match='predicted masks are 50x20 .* says 50x40'):
        metric.compute_metrics(metric.results)
    with pytest.raises(FileNotFoundError, match='instance annotations not found'):
        m = CocoInstanceAPMetric(ann_file=str(coco_files) + '.missing')
        m.dataset_meta = META
        m.compute_metrics([])


# ------------------------------------------------------------------------------------------------ Cityscapes
CS_META = dict(classes=('road', 'person', 'car', 'sky'), is_thing=[False, True, True, False],
               category_ids=[7, 24, 26, 23])
CH, CW = 48, 64
NAMES = ('aachen_000000_000019', 'aachen_000001_000019')


def _write_cs_gt(root):
    gt_dir = root / 'gtFine' / 'val'
    (gt_dir / 'aachen').mkdir(parents=True)
    ids = []
    a = np.full((CH, CW), 7, np.uint16)  # road
    a[:6] = 0  # unlabelled (ignoreInEval, void for the script)
    a[10:30, 5:25] = 26001
    a[12:32, 35:55] = 26002
    a[30:46, 2:14] = 24001
    ids.append(a)
    b = np.full((CH, CW), 23, np.uint16)  # sky
    b[20:40, 10:40] = 26001
    b[5:18, 40:60] = 24  # a person group region without instances (id < 1000)
    ids.append(b)
    files = []
    for name, arr in zip(NAMES, ids):
        path = gt_dir / 'aachen' / f'{name}_gtFine_instanceIds.png'
        assert cv2.imwrite(str(path), arr)
        files.append(str(path))
    return gt_dir, files, ids


def _cs_predictions(gt_ids, perfect=False):
    preds = []
    for arr in gt_ids:
        items = []
        for iid in np.unique(arr):
            if iid >= 1000:
                m = arr == iid
                if not perfect:
                    m = np.roll(m, shift=int(iid % 3) + 1, axis=1)
                items.append((m, 2 if iid // 1000 == 26 else 1, 0.9 - 0.1 * (iid % 1000)))
        if not perfect:
            items.append((_box_mask(40, 20, 60, 40, CH, CW), 2, 0.95))  # confident false positive car
            items.append((_box_mask(0, 0, 64, 6, CH, CW), 0, 0.99))  # stuff: not an instance prediction
        preds.append(items)
    return preds


def _cs_samples(preds):
    return [dict(img_path=f'/data/leftImg8bit/val/aachen/{name}_leftImg8bit.png', pred_instances=dict(
        masks=torch.from_numpy(np.stack([m for m, _, _ in items])), labels=torch.tensor([c for _, c, _ in items]),
        scores=torch.tensor([s for _, _, s in items]))) for name, items in zip(NAMES, preds)]


def _cityscapes_reference(pred_dir, gt_files, preds, monkeypatch):
    """The documented cityscapesScripts input, written by hand, and its own evaluateImgLists."""
    import cityscapesscripts.evaluation.evalInstanceLevelSemanticLabeling as cs_eval
    # cityscapesScripts 2.3 predates numpy 2: np.in1d is gone (2.4) and count_nonzero's numpy integers do not
    # serialise in its matches.json; restore both for the script's module only, independently of the metric
    count_nonzero = np.count_nonzero
    shim = type('np_compat', (), {'__getattr__': lambda self, name: getattr(np, name)})()
    shim.in1d = lambda a, b: np.isin(a, b).reshape(-1)
    shim.count_nonzero = lambda a, axis=None: int(count_nonzero(a)) if axis is None else count_nonzero(a, axis)
    monkeypatch.setattr(cs_eval, 'np', shim)
    pred_dir.mkdir()
    for name, items in zip(NAMES, preds):
        with open(pred_dir / f'{name}_pred.txt', 'w') as f:
            for k, (m, c, s) in enumerate(items):
                if not CS_META['is_thing'][c]:
                    continue
                Image.fromarray(m.astype(np.uint8) * 255).save(pred_dir / f'{name}_{k}.png')
                f.write(f"{name}_{k}.png {CS_META['category_ids'][c]} {s}\n")
    args = copy.copy(cs_eval.args)
    args.predictionPath, args.predictionWalk = str(pred_dir), None
    args.JSONOutput, args.colorized, args.quiet = False, False, True
    args.gtInstancesFile = str(pred_dir / 'gt.json')
    with contextlib.chdir(pred_dir), contextlib.redirect_stdout(io.StringIO()):
        res = cs_eval.evaluateImgLists([cs_eval.getPrediction(g, args) for g in gt_files], gt_files, args)
    return res['averages']


def test_cityscapes_instance_ap_matches_cityscapesscripts(tmp_path, monkeypatch):
    gt_dir, gt_files, gt_ids = _write_cs_gt(tmp_path)
    preds = _cs_predictions(gt_ids)
    metric = CityscapesInstanceAPMetric(gt_dir=str(gt_dir), classwise=True, keep_files=str(tmp_path / 'ours'))
    metric.dataset_meta = CS_META
    metric.process({}, _cs_samples(preds))
    res = metric.evaluate(2)
    ref = _cityscapes_reference(tmp_path / 'ref', gt_files, preds, monkeypatch)
    assert res['instance/mAP'] == pytest.approx(100 * ref['allAp'], abs=1e-9)
    assert res['instance/AP50'] == pytest.approx(100 * ref['allAp50%'], abs=1e-9)
    assert res['instance/AP-car'] == pytest.approx(100 * ref['classes']['car']['ap'], abs=1e-9)
    assert 0 < res['instance/mAP'] < res['instance/AP50'] < 100
    lines = (tmp_path / 'ours' / f'{NAMES[0]}_pred.txt').read_text().splitlines()
    assert [line.split()[1] for line in lines] == ['24', '26', '26', '26']  # label ids; stuff dropped
    perfect = CityscapesInstanceAPMetric(gt_dir=str(gt_dir))
    perfect.dataset_meta = CS_META
    perfect.process({}, _cs_samples(_cs_predictions(gt_ids, perfect=True)))
    assert perfect.evaluate(2)['instance/mAP'] == pytest.approx(100.0)


def test_cityscapes_instance_ap_errors(tmp_path):
    gt_dir, _, gt_ids = _write_cs_gt(tmp_path)
    metric = CityscapesInstanceAPMetric(gt_dir=str(gt_dir))
    metric.dataset_meta = CS_META
    sample = _cs_samples(_cs_predictions(gt_ids))[0]
    with pytest.raises(FileNotFoundError, match='instance GT not found: .*bochum_000000_000001_gtFine_instanceIds'):
        metric.process({}, [dict(sample, img_path='/x/bochum_000000_000001_leftImg8bit.png')])
    with pytest.raises(ValueError, match='not named <city>_<sequence>_<frame>'):
        metric.process({}, [dict(sample, img_path='/x/photo.png')])
    metric.process({}, [sample])
    metric.process({}, [sample])
    with pytest.raises(ValueError, match='images evaluated twice'):
        metric.compute_metrics(metric.results)
