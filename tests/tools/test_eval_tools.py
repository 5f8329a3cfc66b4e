"""tools/analysis/eval_panoptic.py and eval_semseg.py: CLI outputs equal panopticapi / reference formulas."""
import contextlib
import importlib.util
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / 'tests' / 'evaluation'))
from panoptic_cases import make_dataset, write_panopticapi_format  # noqa: E402


def _load_tool(name):
    spec = importlib.util.spec_from_file_location(name, REPO / 'tools' / 'analysis' / f'{name}.py')
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope='module')
def pan_files(tmp_path_factory):
    return write_panopticapi_format(str(tmp_path_factory.mktemp('pan')), make_dataset(seed=7, num_images=16))


def test_eval_panoptic_cli_matches_panopticapi(pan_files, tmp_path):
    from panopticapi.evaluation import pq_compute as papi_pq
    with contextlib.redirect_stdout(io.StringIO()):
        ref = papi_pq(pan_files['gt_json'], pan_files['pred_json'], pan_files['gt_folder'],
                      pan_files['pred_folder'])
    out = tmp_path / 'res.json'
    proc = subprocess.run([
        sys.executable,
        str(REPO / 'tools/analysis/eval_panoptic.py'), '--gt-json', pan_files['gt_json'], '--gt-folder',
        pan_files['gt_folder'], '--pred-json', pan_files['pred_json'], '--pred-folder',
        pan_files['pred_folder'], '--out',
        str(out), '--workers', '2'
    ],
                          capture_output=True,
                          text=True,
                          check=True)
    assert 'Things' in proc.stdout and 'PQ' in proc.stdout
    res = json.loads(out.read_text())
    for key in ('All', 'Things', 'Stuff'):
        assert res[key]['n'] == ref[key]['n']
        for m in ('pq', 'sq', 'rq'):
            assert abs(res[key][m] - ref[key][m]) < 1e-9
    for cid, r in ref['per_class'].items():
        for m in ('pq', 'sq', 'rq'):
            assert abs(res['per_class'][str(cid)][m] - r[m]) < 1e-9


def test_eval_panoptic_function_and_missing_prediction(pan_files, tmp_path):
    tool = _load_tool('eval_panoptic')
    res = tool.pq_compute(pan_files['gt_json'],
                          pan_files['pred_json'],
                          pan_files['gt_folder'],
                          pan_files['pred_folder'],
                          workers=1)
    assert set(res) == {'All', 'Things', 'Stuff', 'per_class'}
    pred = json.loads(Path(pan_files['pred_json']).read_text())
    pred['annotations'] = pred['annotations'][:-1]
    bad = tmp_path / 'pred.json'
    bad.write_text(json.dumps(pred))
    with pytest.raises(Exception, match='no prediction for the image with id: 115'):
        tool.main([
            '--gt-json', pan_files['gt_json'], '--pred-json',
            str(bad), '--pred-folder', pan_files['pred_folder']
        ])


def test_eval_semseg_cli(tmp_path):
    rng = np.random.default_rng(0)
    (tmp_path / 'gt').mkdir()
    (tmp_path / 'pred').mkdir()
    n = 5
    conf = np.zeros((n + 1, n + 1), np.int64)  # detectron2 layout: rows pred, cols gt, last = ignore
    for i in range(6):
        raw = rng.integers(0, n + 1, size=(12, 14)).astype(np.uint8)  # 0 = "other" (reduce_zero_label)
        gt = raw.astype(np.int64) - 1
        gt[raw == 0] = n
        pred = np.where(rng.random((12, 14)) < 0.7, np.clip(gt, 0, n - 1), rng.integers(0, n, size=(12, 14)))
        cv2.imwrite(str(tmp_path / 'gt' / f'{i}.png'), raw)
        cv2.imwrite(str(tmp_path / 'pred' / f'{i}.png'), pred.astype(np.uint8))
        conf += np.bincount((n + 1) * pred.reshape(-1) + gt.reshape(-1),
                            minlength=(n + 1)**2).reshape(n + 1, n + 1)
    tp = conf.diagonal()[:-1]
    pos_gt = conf[:-1, :-1].sum(0)
    pos_pred = conf[:-1, :-1].sum(1)
    miou = np.mean(tp / (pos_gt + pos_pred - tp))
    out = tmp_path / 'res.json'
    tool = _load_tool('eval_semseg')
    tool.main([
        '--gt-dir',
        str(tmp_path / 'gt'), '--pred-dir',
        str(tmp_path / 'pred'), '--num-classes',
        str(n), '--reduce-zero-label', '--out',
        str(out)
    ])
    res = json.loads(out.read_text())
    assert res['mIoU'] == pytest.approx(100 * miou, abs=1e-9)
    assert res['pACC'] == pytest.approx(100 * tp.sum() / pos_gt.sum(), abs=1e-9)
    for workers in ('1', '3'):  # integer counts: the same numbers whatever the pool
        assert tool.main(['--gt-dir', str(tmp_path / 'gt'), '--pred-dir', str(tmp_path / 'pred'), '--num-classes',
                          str(n), '--reduce-zero-label', '--workers', workers]) == res
    (tmp_path / 'pred' / '3.png').unlink()
    with pytest.raises(FileNotFoundError, match='no prediction for GT image 3'):
        tool.main([
            '--gt-dir',
            str(tmp_path / 'gt'), '--pred-dir',
            str(tmp_path / 'pred'), '--num-classes', '5', '--reduce-zero-label'
        ])


def test_eval_semseg_vocabulary_names(tmp_path):
    from ovseg.vocabulary import load_vocabulary
    names = [syns[0] for syns in load_vocabulary('toy_scenes')]
    (tmp_path / 'gt').mkdir()
    (tmp_path / 'pred').mkdir()
    lab = (np.arange(6 * 8).reshape(6, 8) % len(names)).astype(np.uint8)
    cv2.imwrite(str(tmp_path / 'gt' / 'a.png'), lab)
    cv2.imwrite(str(tmp_path / 'pred' / 'a.png'), lab)
    res = _load_tool('eval_semseg').main(['--gt-dir', str(tmp_path / 'gt'), '--pred-dir', str(tmp_path / 'pred'),
                                          '--vocabulary', 'toy_scenes'])
    assert res['mIoU'] == 100.0 and f'IoU-{names[0]}' in res


def test_eval_semseg_16bit_class_255_counts(tmp_path):
    """A-847 TIFFs: the default ignore value follows the dataset rule (65535), so class 255 is scored."""
    (tmp_path / 'gt').mkdir()
    (tmp_path / 'pred').mkdir()
    gt = np.array([[255, 255, 3, 65535]], np.uint16)
    cv2.imwrite(str(tmp_path / 'gt' / 'a.tif'), gt)
    cv2.imwrite(str(tmp_path / 'pred' / 'a.png'), np.array([[255, 3, 3, 255]], np.uint16))
    res = _load_tool('eval_semseg').main(['--gt-dir', str(tmp_path / 'gt'), '--pred-dir', str(tmp_path / 'pred'),
                                          '--vocabulary', 'ade20k_847', '--gt-suffix', '.tif'])
    assert res['IoU-pier'] == pytest.approx(50.0) and res['mIoU'] == pytest.approx(50.0)
    with pytest.raises(ValueError, match='--ignore-index: ignore_index 255 is one of the 847 class indices'):
        _load_tool('eval_semseg').main(['--gt-dir', str(tmp_path / 'gt'), '--pred-dir', str(tmp_path / 'pred'),
                                        '--vocabulary', 'ade20k_847', '--gt-suffix', '.tif', '--ignore-index', '255'])


def test_cli_workers_default_to_usable_cores(pan_files):
    """Like panopticapi (one process per core), the CLIs use every core this process may run on."""
    cores = len(os.sched_getaffinity(0))
    args = _load_tool('eval_panoptic').parse_args(['--gt-json', 'g.json', '--pred-json', 'p.json'])
    assert args.workers == cores
    from ovseg.evaluation.functional import pq_compute
    one = pq_compute(pan_files['gt_json'], pan_files['pred_json'], workers=1)
    for workers in (2, 3, 16):  # automatic chunking; the reduction order is fixed, so equal up to rounding
        many = pq_compute(pan_files['gt_json'], pan_files['pred_json'], workers=workers)
        for key in ('All', 'Things', 'Stuff'):
            assert many[key]['n'] == one[key]['n']
            assert many[key]['pq'] == pytest.approx(one[key]['pq'], abs=1e-12)


def test_worker_pool_forks_safely_from_a_process_using_opencv_threads(pan_files, tmp_path):
    """The pool forks from callers whose OpenCV thread pool is running (pytest, training jobs): it must not
    touch OpenCV's thread state in the child (resizing it there waits forever on the parent's threads)."""
    code = ('import sys, time, cv2, numpy as np\n'
            'cv2.resize(np.zeros((1500, 1500, 3), np.uint8), (2500, 2500))  # starts the OpenCV thread pool\n'
            'time.sleep(0.5)  # its threads now wait on their condition variable\n'
            'from ovseg.evaluation.functional import evaluate_label_dirs, pq_compute\n'
            'res = pq_compute(*sys.argv[1:5], workers=2)\n'
            'print(res["All"]["n"])\n')
    out = subprocess.run([sys.executable, '-c', code, pan_files['gt_json'], pan_files['pred_json'],
                          pan_files['gt_folder'], pan_files['pred_folder']], cwd=REPO, capture_output=True,
                         text=True, timeout=60, check=True)
    assert int(out.stdout.split()[-1]) > 0
