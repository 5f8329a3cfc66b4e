"""cityscapes_inout: one JSON per label configuration, the summary, bad input, and training on the output."""
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from ovseg.datasets import CocoPanopticDataset
from ovseg.structures.panoptic_format import write_panoptic_png
from tests.projects.inout_vocab.test_label_configs import FAKE_SEGMENTS, fake_cityscapes

REPO = Path(__file__).resolve().parents[2]
TOOL = REPO / 'tools/dataset_converters/cityscapes_inout.py'
ORDER = (24, 25, 26, 27, 28, 31, 32, 33)


def _tool():
    spec = importlib.util.spec_from_file_location('cityscapes_inout', TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _write(path: Path, doc) -> Path:
    path.write_text(json.dumps(doc))
    return path


def _cli(*args, cwd=REPO):
    return subprocess.run([sys.executable, str(TOOL), *map(str, args)], capture_output=True, text=True, cwd=cwd)


def test_all_configs_files_and_summary(tmp_path, capsys):
    src = _write(tmp_path / 'cityscapes_panoptic_train.json', fake_cityscapes())
    out = tmp_path / 'out'
    assert _tool().main(['--panoptic-json', str(src), '--out-dir', str(out)]) == 0
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted([f'cityscapes_panoptic_train_{n:03d}.json' for n in range(9)]
                           + ['cityscapes_panoptic_train_label_configs_summary.json',
                              'cityscapes_panoptic_train_label_configs_summary.md'])
    raw = fake_cityscapes()
    for n in range(9):
        doc = json.loads((out / f'cityscapes_panoptic_train_{n:03d}.json').read_text())
        gone = set(ORDER[:n])
        assert [[s['id'] for s in a['segments_info']] for a in doc['annotations']] == [
            [sid for sid, cat, _ in segs if cat not in gone] for segs in FAKE_SEGMENTS.values()]
        assert doc['categories'] == raw['categories'] and doc['images'] == raw['images']
    assert json.loads((out / 'cityscapes_panoptic_train_000.json').read_text()) == raw
    summary = json.loads((out / 'cityscapes_panoptic_train_label_configs_summary.json').read_text())
    assert summary['delete_order'] == list(ORDER) and summary['images'] == 3 and summary['segments'] == 17
    c3 = summary['configs']['003']
    assert c3['deleted_ids'] == [24, 25, 26] and c3['deleted_names'] == ['person', 'rider', 'car']
    assert c3['classes']['24'] == dict(name='person', segments=3, pixels=133)
    assert c3['totals'] == dict(segments_removed=5, pixels_removed=133 + 15 + 200, segments_kept=12)
    assert summary['configs']['000']['totals'] == dict(segments_removed=0, pixels_removed=0, segments_kept=17)
    assert summary['configs']['008']['totals'] == dict(segments_removed=12, pixels_removed=1865, segments_kept=5)
    md = (out / 'cityscapes_panoptic_train_label_configs_summary.md').read_text()
    assert '| 003 | [24, 25, 26] | person, rider, car | 5 | 348 | 12 |' in md
    assert '| 008 | bicycle (33) | 3 | 67 |' in md
    err = capsys.readouterr().err
    assert 'config 002: deleted [24, 25] (person, rider): removed 4 segments / 148 pixels, kept 13' in err
    assert err.count('config 0') == 9


def test_config_subset_prefix_and_no_pngs(tmp_path):
    src = _write(tmp_path / 'train.json', fake_cityscapes())
    (tmp_path / 'pan').mkdir()
    png = tmp_path / 'pan' / 'a.png'
    write_panoptic_png(png, np.full((4, 4), 24000, np.int64))
    before = png.read_bytes()
    out = tmp_path / 'o'
    assert _tool().main(['--panoptic-json', str(src), '--out-dir', str(out), '--configs', '2-4,8',
                         '--prefix', 'cs']) == 0
    assert sorted(p.name for p in out.iterdir()) == ['cs_002.json', 'cs_003.json', 'cs_004.json', 'cs_008.json',
                                                     'cs_label_configs_summary.json', 'cs_label_configs_summary.md']
    assert png.read_bytes() == before
    assert [p.name for p in tmp_path.rglob('*.png')] == ['a.png']  # the tool wrote no PNG anywhere
    summary = json.loads((out / 'cs_label_configs_summary.json').read_text())
    assert list(summary['configs']) == ['002', '003', '004', '008']


def test_bad_configs(tmp_path):
    src = _write(tmp_path / 'train.json', fake_cityscapes())
    for configs, needle in (('9', 'configuration 9'), ('0-9', 'configuration 9'), ('x', "'x'")):
        with pytest.raises(ValueError, match='--configs') as info:
            _tool().main(['--panoptic-json', str(src), '--out-dir', str(tmp_path / 'o'), '--configs', configs])
        assert needle in str(info.value)
    assert not (tmp_path / 'o').exists()
    res = _cli('--panoptic-json', src, '--out-dir', tmp_path / 'o', '--configs', '0-9')  # one line, exit 1
    assert res.returncode == 1 and len(res.stderr.strip().splitlines()) == 1
    assert res.stderr.startswith('cityscapes_inout.py: error: --configs: configuration 9 in')


def test_not_cityscapes_json(tmp_path):
    doc = fake_cityscapes()
    doc['categories'].append(dict(id=1, name='ego vehicle', isthing=0))
    src = _write(tmp_path / 'coco.json', doc)
    with pytest.raises(ValueError) as info:
        _tool().main(['--panoptic-json', str(src), '--out-dir', str(tmp_path / 'o')])
    assert f'{src}: not a Cityscapes panoptic JSON: unknown category id(s) [1]' in str(info.value)
    assert not (tmp_path / 'o').exists()
    with pytest.raises(SystemExit, match='panoptic JSON not found: .*missing.json'):
        _tool().main(['--panoptic-json', str(tmp_path / 'missing.json'), '--out-dir', str(tmp_path / 'o')])
    (tmp_path / 'bad.json').write_text('{"images": [')
    with pytest.raises(ValueError, match='bad.json: not valid JSON'):
        _tool().main(['--panoptic-json', str(tmp_path / 'bad.json'), '--out-dir', str(tmp_path / 'o')])


def test_custom_delete_order(tmp_path):
    """The toy study: a custom order need not be the Cityscapes classes, but its ids must exist."""
    doc = fake_cityscapes()
    doc['categories'] = [c for c in doc['categories'] if c['id'] not in (12, 13)]  # not Cityscapes any more
    src = _write(tmp_path / 'toy.json', doc)
    out = tmp_path / 'o'
    assert _tool().main(['--panoptic-json', str(src), '--out-dir', str(out), '--delete-order', '33,7']) == 0
    assert sorted(p.name for p in out.glob('toy_0*.json')) == ['toy_000.json', 'toy_001.json', 'toy_002.json']
    two = json.loads((out / 'toy_002.json').read_text())
    assert [[s['id'] for s in a['segments_info']] for a in two['annotations']] == [
        [23, 24000, 24001, 26000], [11, 25000, 27000, 24], [8, 28000, 31000, 32000]]
    with pytest.raises(ValueError, match=r'toy.json: category ids do not match the delete order: missing '
                                         r'category id\(s\) \[99\]'):
        _tool().main(['--panoptic-json', str(src), '--out-dir', str(out), '--delete-order', '24,99'])
    for bad in ('24,x', '24,24', ''):
        with pytest.raises(ValueError, match='--delete-order'):
            _tool().main(['--panoptic-json', str(src), '--out-dir', str(out), '--delete-order', bad])
    with pytest.raises(ValueError, match=r'configuration 3 in .* outside 0..2'):
        _tool().main(['--panoptic-json', str(src), '--out-dir', str(out), '--delete-order', '33,7',
                      '--configs', '3'])


def _dataset_on_disk(tmp_path: Path):
    """One 6x8 image: road (id 7) left half, a person (24000) and a car (26000) on the right."""
    pan = np.full((6, 8), 7, np.int64)
    pan[1:4, 5:7] = 24000
    pan[4:6, 4:8] = 26000
    segs = {0: [(7, 7, int((pan == 7).sum())), (24000, 24, 6), (26000, 26, 8)]}
    doc = fake_cityscapes(segs)
    (tmp_path / 'img').mkdir()
    (tmp_path / 'pan').mkdir()
    cv2.imwrite(str(tmp_path / 'img' / doc['images'][0]['file_name']), np.zeros((6, 8, 3), np.uint8))
    write_panoptic_png(tmp_path / 'pan' / doc['annotations'][0]['file_name'], pan)
    return _write(tmp_path / 'cityscapes_panoptic_train.json', doc), pan


def test_converted_json_trains_with_no_target(tmp_path):
    src, pan = _dataset_on_disk(tmp_path)
    assert _tool().main(['--panoptic-json', str(src), '--out-dir', str(tmp_path / 'cfg'), '--configs', '1']) == 0
    pipeline = [dict(type='LoadImage'), dict(type='LoadPanopticAnnotations'),
                dict(type='PackSegInputs', with_instances=True)]
    kw = dict(ann_file=str(tmp_path / 'cfg' / 'cityscapes_panoptic_train_001.json'), data_root=str(tmp_path),
              data_prefix=dict(img='img', seg='pan'), pipeline=pipeline)
    out = CocoPanopticDataset(unlisted_segments='no_target', **kw)[0]
    sample = out['data_samples']
    pan_gt = sample.gt_panoptic_seg.data[0].numpy()
    assert (pan_gt[pan == 24000] == 0).all()  # the deleted person is VOID
    assert (pan_gt[pan == 26000] == 26000).all() and (pan_gt[pan == 7] == 7).all()
    sem = sample.gt_sem_seg.data[0].numpy()
    assert (sem[pan == 24000] == 255).all() and (sem[pan == 26000] == 13).all() and (sem[pan == 7] == 0).all()
    inst = sample.gt_instances
    assert inst.labels.tolist() == [0, 13]  # road, car; no person (train id 11)
    assert not inst.masks[:, pan == 24000].any()
    with pytest.raises(ValueError, match=r"contains segment id\(s\) \[24000\] .*unlisted_segments='no_target'"):
        CocoPanopticDataset(**kw)[0]  # default: an id missing from the JSON is an error
