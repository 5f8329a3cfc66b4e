"""ToyScenes: determinism, base/novel withholding, dataset wrapper, concurrency-safe generation, CLI."""
import hashlib
import json
import multiprocessing as mp
import time

import numpy as np
import pytest

from ovseg.datasets import ToyScenesDataset, ensure_toy_scenes, generate_toy_scenes
from ovseg.datasets.toy_scenes import main
from ovseg.structures.panoptic_format import read_panoptic_png
from ovseg.vocabulary import load_vocabulary

SMALL = dict(num_train=4, num_val=2, size=48)


def _digest(root):
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob('*')) if p.is_file()}


def test_same_seed_same_bytes(tmp_path):
    a = _digest(generate_toy_scenes(tmp_path / 'a', seed=7, **SMALL))
    b = _digest(generate_toy_scenes(tmp_path / 'b', seed=7, **SMALL))
    c = _digest(generate_toy_scenes(tmp_path / 'c', seed=8, **SMALL))
    assert a == b and len(a) == 4 * 3 + 2 * 3 + 2 + 2 + 2  # pngs + jsons + vocabularies + meta
    assert a['images/train/000000.png'] != c['images/train/000000.png']


def test_annotations_are_consistent(toy_root):
    import cv2
    doc = json.loads((toy_root / 'panoptic_val.json').read_text())
    cats = {c['id']: c for c in doc['categories']}
    for ann in doc['annotations']:
        pan = read_panoptic_png(toy_root / 'panoptic_val' / ann['file_name'])
        sem = cv2.imread(str(toy_root / 'semantic_val' / ann['file_name']), cv2.IMREAD_UNCHANGED)
        assert pan.shape == sem.shape == (64, 80)
        ids = set(np.unique(pan).tolist()) - {0}
        assert ids == {s['id'] for s in ann['segments_info']}
        things = 0
        for s in ann['segments_info']:
            m = pan == s['id']
            assert s['area'] == int(m.sum()) > 0
            ys, xs = np.nonzero(m)
            assert s['bbox'] == [int(xs.min()), int(ys.min()), int(np.ptp(xs)) + 1, int(np.ptp(ys)) + 1]
            assert (sem[m] == sorted(cats).index(s['category_id'])).all()
            things += cats[s['category_id']]['isthing']
        assert 1 <= things <= 4


def test_novel_absent_from_train(toy_root):
    train = json.loads((toy_root / 'panoptic_train.json').read_text())
    val = json.loads((toy_root / 'panoptic_val.json').read_text())
    names = {c['id']: c['name'] for c in val['categories']}
    assert len(val['categories']) == 11
    assert {c['name'] for c in train['categories']} == set(names.values()) - {'star', 'water'}
    train_cats = {s['category_id'] for a in train['annotations'] for s in a['segments_info']}
    assert not {names[c] for c in train_cats} & {'star', 'water'}
    assert [s[0] for s in load_vocabulary(toy_root / 'toy_scenes_train.txt')] == [
        c['name'] for c in train['categories']]
    ds = ToyScenesDataset(str(toy_root), split='train', generate=False)
    assert ds.metainfo['novel_classes'] == ['star', 'water'] and 'star' not in ds.metainfo['classes']
    assert len(ToyScenesDataset(str(toy_root), split='val', generate=False).metainfo['classes']) == 11


def test_novel_unlabelled_mode(tmp_path):
    root = generate_toy_scenes(tmp_path / 'u', seed=1, num_train=20, num_val=1, size=48,
                               novel_classes=['ball', 'box', 'sign', 'ring', 'star'], novel_mode='unlabelled',
                               novel_in_train_vocab=True)
    train = json.loads((root / 'panoptic_train.json').read_text())
    assert len(train['categories']) == 11  # kept in the vocabulary on request
    labelled = {s['category_id'] for a in train['annotations'] for s in a['segments_info']}
    assert labelled.isdisjoint({1, 2, 3, 4, 5})
    # novel things are drawn but VOID: some train images have VOID pixels
    void = sum(int((read_panoptic_png(root / 'panoptic_train' / a['file_name']) == 0).sum())
               for a in train['annotations'])
    assert void > 0


def test_existing_data_with_other_params_is_rejected(toy_root):
    with pytest.raises(ValueError, match='different parameters.*seed'):
        ensure_toy_scenes(toy_root, num_train=12, num_val=6, size=(64, 80), seed=4,
                          novel_classes=['star', 'water'])
    with pytest.raises(ValueError, match='not a ToyScenes class'):
        ensure_toy_scenes(toy_root, novel_classes=['dragon'])
    with pytest.raises(TypeError, match='unknown ToyScenes parameter'):
        ensure_toy_scenes(toy_root, colour='red')


def test_incomplete_directory_is_rejected(tmp_path):
    (tmp_path / 'half').mkdir()
    (tmp_path / 'half' / 'junk.txt').write_text('x')
    with pytest.raises(FileExistsError, match='not a complete ToyScenes'):
        ensure_toy_scenes(tmp_path / 'half', **SMALL)
    with pytest.raises(FileNotFoundError, match='meta.json'):
        ToyScenesDataset(str(tmp_path / 'nothing'), generate=False)


def _ensure(root):
    ensure_toy_scenes(root, **SMALL)


def test_concurrent_generation_is_safe(tmp_path):
    """Several processes (as DDP ranks) generate once; none sees a half-written dataset."""
    root = tmp_path / 'shared'
    ctx = mp.get_context('fork')
    procs = [ctx.Process(target=_ensure, args=(root,)) for _ in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert all(p.exitcode == 0 for p in procs)
    assert (root / 'meta.json').is_file() and (root.stat().st_mode & 0o777) == 0o755
    assert not [p for p in tmp_path.iterdir() if p.name.startswith('.shared.tmp')]
    assert len(ToyScenesDataset(str(root), split='train', generate=SMALL)) == 4


def test_generation_speed_and_cli(tmp_path, capsys):
    start = time.perf_counter()
    assert main([str(tmp_path / 'cli'), '--num-train', '40', '--num-val', '10', '--size', '128',
                 '--novel-classes', 'ring']) == 0
    elapsed = time.perf_counter() - start
    assert elapsed < 10, f'40+10 images took {elapsed:.1f}s'  # 250 images in ~5x this budget
    meta = json.loads((tmp_path / 'cli' / 'meta.json').read_text())
    assert meta['size'] == [128, 128] and meta['novel_classes'] == ['ring'] and meta['num_train'] == 40
