"""Referring cIoU / gIoU: equal to LISA's intersectionAndUnion accumulation, hand-checked cases, the metric."""
import numpy as np
import pytest
import torch

from ovseg.evaluation import ReferringSegMetric
from ovseg.evaluation.functional import ReferringStats, referring_image_stats, referring_iou, referring_summary


# --------------------------------------------------------------------------------- LISA, re-implemented directly
def _lisa_intersection_and_union(output, target, K=2, ignore_index=255):
    """LISA utils/utils.py ``intersectionAndUnionGPU`` (torch.histc on float32) in numpy."""
    output = output.astype(np.float32).reshape(-1).copy()
    target = target.astype(np.float32).reshape(-1)
    output[target == ignore_index] = ignore_index
    intersection = output[output == target]
    hist = lambda x: np.histogram(x, bins=K, range=(0, K - 1))[0].astype(np.float32)  # noqa: E731
    area_intersection, area_output, area_target = hist(intersection), hist(output), hist(target)
    return area_intersection, area_output + area_target - area_intersection, area_target


class _AverageMeter:
    """LISA utils/utils.py ``AverageMeter`` (sum / count)."""

    def __init__(self):
        self.sum, self.count = 0, 0

    def update(self, val, n=1):
        self.sum += val * n
        self.count += n
        self.avg = self.sum / self.count


def _lisa_validate(images):
    """LISA train_ds.py ``validate``: per image, every expression; cIoU = I/U + 1e-10, gIoU = meter average."""
    intersection_meter, union_meter, acc_iou_meter = _AverageMeter(), _AverageMeter(), _AverageMeter()
    for preds, gts in images:
        intersection, union, acc_iou = 0.0, 0.0, 0.0
        for output_i, mask_i in zip(preds, gts):
            intersection_i, union_i, _ = _lisa_intersection_and_union(output_i, mask_i, 2, ignore_index=255)
            intersection += intersection_i
            union += union_i
            acc_iou += intersection_i / (union_i + np.float32(1e-5))
            acc_iou[union_i == 0] += 1.0  # no-object target
        acc_iou = acc_iou / len(gts)
        intersection_meter.update(intersection)
        union_meter.update(union)
        acc_iou_meter.update(acc_iou, n=len(gts))
    iou_class = intersection_meter.sum / (union_meter.sum + 1e-10)
    return float(iou_class[1]), float(acc_iou_meter.avg[1])


def _random_images(seed, n_images=12, size=(23, 31)):
    rng = np.random.default_rng(seed)
    images = []
    for i in range(n_images):
        n = int(rng.integers(1, 5))
        gts, preds = [], []
        for k in range(n):
            kind = rng.integers(0, 6)
            gt = (rng.random(size) < rng.uniform(0.05, 0.6)).astype(np.uint8)
            pred = (rng.random(size) < rng.uniform(0.05, 0.6)).astype(np.uint8)
            if kind == 0:  # no object, nothing predicted: IoU 1
                gt[:], pred[:] = 0, 0
            elif kind == 1:  # no object, something predicted: IoU 0
                gt[:] = 0
            elif kind == 2:  # object missed
                pred[:] = 0
            elif kind == 3:  # ignored pixels in the GT
                gt[rng.random(size) < 0.2] = 255
            elif kind == 4:  # near-perfect prediction
                pred = np.where(rng.random(size) < 0.02, 1 - gt, gt).astype(np.uint8)
            gts.append(gt)
            preds.append(pred)
        images.append((preds, gts))
    return images


@pytest.mark.parametrize('seed', [0, 1, 2])
def test_equals_lisa_accumulation(seed):
    images = _random_images(seed)
    total = ReferringStats()
    for i, (preds, gts) in enumerate(images):
        total += referring_image_stats(preds, gts, image_id=i)
    ours = referring_summary(total)
    ciou, giou = _lisa_validate(images)
    assert ours['num_expressions'] == sum(len(g) for _, g in images)
    assert ours['cIoU'] == pytest.approx(ciou, abs=1e-6)  # LISA accumulates in float32
    assert ours['gIoU'] == pytest.approx(giou, abs=1e-6)


def test_hand_checked_case():
    gt = np.array([[1, 1, 0], [0, 255, 0]], np.uint8)
    pred = np.array([[1, 0, 1], [0, 1, 0]], bool)  # the prediction on the ignored pixel does not count
    assert referring_iou(pred, gt) == (1, 3)
    empty = np.zeros((2, 3), bool)
    stats = referring_image_stats([pred, empty, pred], [gt, empty, empty])  # IoU 1/3, 1 (empty union), 0
    assert (stats.intersection, stats.union, stats.count) == (1, 3 + 0 + 3, 3)
    res = referring_summary(stats)
    assert res['cIoU'] == pytest.approx(1 / 6)
    assert res['gIoU'] == pytest.approx((1 / (3 + 1e-5) + 1 + 0) / 3, rel=1e-12)
    assert referring_iou(torch.ones(2, 2, dtype=torch.bool), torch.ones(2, 2, dtype=torch.bool)) == (4, 4)
    assert referring_iou(pred, gt == 1, ignore_index=None) == (1, 4)  # a bool GT has no ignore label


def test_errors_name_the_expression():
    with pytest.raises(ValueError, match=r"expression \('img7', 1\): prediction shape \(2, 2\) != GT shape"):
        referring_image_stats([np.zeros((3, 3)), np.zeros((2, 2))], [np.zeros((3, 3))] * 2, image_id='img7')
    with pytest.raises(ValueError, match=r"expression \('img7', 0\): prediction must be binary"):
        referring_image_stats([np.full((2, 2), 0.7)], [np.zeros((2, 2))], image_id='img7')
    with pytest.raises(ValueError, match='GT mask must be binary'):
        referring_iou(np.zeros((2, 2)), np.full((2, 2), 3))
    with pytest.raises(ValueError, match="image 'x': 1 predicted masks for 2 expressions"):
        referring_image_stats([np.zeros((2, 2))], [np.zeros((2, 2))] * 2, image_id='x')
    with pytest.raises(ValueError, match='no referring expressions'):
        referring_summary(ReferringStats())


def test_referring_metric_over_batches_matches_core():
    images = _random_images(5, n_images=7)
    metric = ReferringSegMetric()
    for i, (preds, gts) in enumerate(images):  # data samples as mmengine hands them over (to_dict())
        metric.process({}, [dict(img_id=i, pred_masks=torch.as_tensor(np.stack(preds)).bool(),
                                 gt_masks=torch.as_tensor(np.stack(gts)))])
    res = metric.evaluate(len(images))
    ciou, giou = _lisa_validate(images)
    assert res['refer/cIoU'] == pytest.approx(100 * ciou, abs=1e-4)
    assert res['refer/gIoU'] == pytest.approx(100 * giou, abs=1e-4)
    metric = ReferringSegMetric()
    with pytest.raises(KeyError, match="image 3: data sample has no \"pred_masks\""):
        metric.process({}, [dict(img_id=3, gt_masks=torch.zeros(1, 2, 2))])
