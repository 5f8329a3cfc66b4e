"""tools/analysis/eval_refseg.py: RLE files scored like the in-memory referring core, Sa2VA's skip rule, errors."""
import json
import subprocess
import sys

import numpy as np
import pytest
from pycocotools import mask as mask_util

from ovseg.evaluation.functional import referring_image_stats, referring_summary
from ovseg.evaluation.functional.referring_io import RefSegFormatError, evaluate_refseg_files
from tests.conftest import REPO_ROOT

TOOL = REPO_ROOT / 'tools' / 'analysis' / 'eval_refseg.py'


def _rle(mask: np.ndarray) -> dict:
    rle = mask_util.encode(np.asfortranarray(mask.astype(np.uint8)))
    rle['counts'] = rle['counts'].decode('ascii')
    return rle


def _case(rng: np.random.Generator, n: int = 12):
    """Random boxes/blobs per sentence over 3 image sizes; some empty GTs, some empty and missing predictions."""
    gts, preds = [], []
    for k in range(n):
        h, w = [(20, 30), (17, 23), (32, 32)][k % 3]
        gt = rng.random((h, w)) < (0.0 if k == 4 else 0.3)
        pred = gt ^ (rng.random((h, w)) < 0.2)
        if k == 7:
            pred[:] = False
        gts.append(gt)
        preds.append(pred)
    return gts, preds


def _write(tmp_path, gts, preds, missing=(), null=()):
    gt_json = {'annotations': [{'sent_id': 100 + k, 'image_id': k // 2, 'segmentation': _rle(g)}
                               for k, g in enumerate(gts)]}
    pred_json = [{'sent_id': 100 + k, 'segmentation': None if k in null else _rle(p)}
                 for k, p in enumerate(preds) if k not in missing]
    (tmp_path / 'gt.json').write_text(json.dumps(gt_json))
    (tmp_path / 'pred.json').write_text(json.dumps(pred_json))
    return tmp_path / 'gt.json', tmp_path / 'pred.json'


@pytest.mark.parametrize('seed', [0, 1, 2])
def test_equals_in_memory_core(tmp_path, seed):
    gts, preds = _case(np.random.default_rng(seed))
    missing, null = {2}, {5}
    gt_path, pred_path = _write(tmp_path, gts, preds, missing, null)
    scored = [np.zeros_like(g) if k in missing | null else p for k, (g, p) in enumerate(zip(gts, preds))]
    expected = referring_summary(sum((referring_image_stats([p], [g]) for p, g in zip(scored, gts)),
                                     start=referring_image_stats([], [])))
    res = evaluate_refseg_files(gt_path, pred_path)
    assert res['num_sentences'] == len(gts) and res['num_missing'] == 2
    assert res['cIoU'] == pytest.approx(expected['cIoU'], abs=1e-12)
    assert res['gIoU'] == pytest.approx(expected['gIoU'], abs=1e-12)


def test_hand_checked_and_skip_rule(tmp_path):
    """Sentence a: I 2, U 4; sentence b: no prediction, GT area 3. Default: cIoU 2/7, gIoU (0.5+0)/2.
    Sa2VA's skip rule: cIoU 2/4, gIoU still (0.5+0)/2."""
    g1 = np.zeros((4, 4), bool); g1[0, :3] = True  # noqa: E702
    p1 = np.zeros((4, 4), bool); p1[0, 1:4] = True  # noqa: E702
    g2 = np.zeros((4, 4), bool); g2[2, :3] = True  # noqa: E702
    gt_path, pred_path = _write(tmp_path, [g1, g2], [p1, g2], missing={1})
    res = evaluate_refseg_files(gt_path, pred_path)
    assert res['cIoU'] == pytest.approx(2 / 7) and res['gIoU'] == pytest.approx(0.5 * 2 / (4 + 1e-5) / 1)
    skip = evaluate_refseg_files(gt_path, pred_path, skip_missing_for_ciou=True)
    assert skip['cIoU'] == pytest.approx(2 / 4) and skip['gIoU'] == pytest.approx(res['gIoU'])


def test_cli_writes_out(tmp_path):
    gts, preds = _case(np.random.default_rng(3), n=6)
    gt_path, pred_path = _write(tmp_path, gts, preds)
    out = tmp_path / 'out.json'
    proc = subprocess.run([sys.executable, str(TOOL), '--gt', str(gt_path), '--pred', str(pred_path), '--out',
                           str(out)], capture_output=True, text=True, cwd=REPO_ROOT)
    assert proc.returncode == 0, proc.stderr
    res = json.loads(out.read_text())
    assert set(res) == {'cIoU', 'gIoU', 'num_sentences', 'num_missing'} and res['num_sentences'] == 6
    assert 0 < res['cIoU'] < 1 and f"cIoU {100 * res['cIoU']:.2f}" in proc.stdout


def test_bad_input_names_file_and_record(tmp_path):
    g = np.ones((4, 5), bool)
    gt_path, pred_path = _write(tmp_path, [g], [g])
    bad = tmp_path / 'bad.json'
    cases = [
        ([{'sent_id': 999, 'segmentation': None}], 'sent_id 999 is not in the GT'),
        ([{'sent_id': 100, 'segmentation': _rle(np.ones((5, 4), bool))}], r'size \[5, 4\] != GT size \[4, 5\]'),
        ([{'sent_id': 100, 'segmentation': {'size': [4, 5], 'counts': '0'}}], 'malformed compressed RLE'),
        ([{'sent_id': 100, 'segmentation': {'size': [4, 5], 'counts': [3, 4]}}], 'summing to height'),
        ([{'sent_id': 100, 'segmentation': None}, {'sent_id': 100, 'segmentation': None}], 'duplicate sent_id'),
        ({'sent_id': 100}, 'expected a list'),
    ]
    for pred, message in cases:
        bad.write_text(json.dumps(pred))
        with pytest.raises(RefSegFormatError, match=message) as exc:
            evaluate_refseg_files(gt_path, bad)
        assert 'bad.json' in str(exc.value)
    proc = subprocess.run([sys.executable, str(TOOL), '--gt', str(gt_path), '--pred', str(bad)],
                          capture_output=True, text=True, cwd=REPO_ROOT)
    assert proc.returncode == 1 and 'expected a list' in proc.stderr and 'Traceback' not in proc.stderr
