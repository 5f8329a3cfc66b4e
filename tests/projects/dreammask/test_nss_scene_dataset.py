"""NSSSceneDataset: lazy masks, vocabulary mapping, filters, skips and errors naming file + field."""
import json

import numpy as np
import pytest
from mmengine.registry import init_default_scope
from PIL import Image

import projects.dreammask.dreammask  # noqa: F401
from ovseg.vocabulary import map_names
from projects.dreammask.dreammask import NSSSceneDataset
from projects.dreammask.dreammask.processed_format import SceneFormatError
from tests.projects.dreammask.test_validate_dataset import _write_scene

PIPE = [dict(type='LoadImage'), dict(type='LoadNSSAnnotations'),
        dict(type='PackSegInputs', with_instances=True, extra_meta_keys=('is_synthetic',))]


@pytest.fixture(autouse=True)
def _scope():
    init_default_scope('ovseg')


def test_name_mapping_onto_training_vocabulary():
    base = [['person', 'child'], ['traffic light'], ['car']]
    m = map_names(['Child', 'traffic_light', 'awning', 'Stairway', 'car'], base)
    assert m == {'Child': 0, 'traffic_light': 1, 'car': 2, 'awning': 3, 'Stairway': 4}


def test_lazy_sample_carries_is_synthetic_and_labels(tmp_path, monkeypatch):
    root = tmp_path / 'p'
    _write_scene(root, 0)
    opened = []
    real_open = Image.open
    monkeypatch.setattr(Image, 'open', lambda p, *a, **k: opened.append(str(p)) or real_open(p, *a, **k))
    ds = NSSSceneDataset(str(root), base_vocabulary=[['car', 'automobile']], pipeline=PIPE)
    assert not any('masks' in p for p in opened)  # start-up read no mask
    assert ds.metainfo['classes'] == ('car', 'awning') and ds.metainfo['novel_classes'] == ('awning',)
    sample = ds[0]
    ds_ = sample['data_samples']
    assert ds_.metainfo['is_synthetic'] is True
    assert ds_.gt_instances.labels.tolist() == [0, 1]
    assert ds_.gt_instances.masks.shape == (2, 48, 64) and ds_.gt_instances.masks[0].sum() == 200


def test_filters_are_counted(tmp_path):
    root = tmp_path / 'p'
    rec = _write_scene(root, 0)
    rec['objects'][0]['clip_score'] = 0.1
    rec['objects'][1]['mask_uncertainty'] = 0.5
    (root / 'scene_00000.json').write_text(json.dumps(rec))
    ds = NSSSceneDataset(str(root), min_clip_score=0.25, max_mask_uncertainty=0.3, pipeline=PIPE)
    assert ds.skipped == {'clip_score below min_clip_score': 1, 'mask_uncertainty above max_mask_uncertainty': 1}
    assert ds.get_data_info(0)['nss_objects'] == []


def test_bad_scene_raises_or_is_skipped_and_counted(tmp_path):
    root = tmp_path / 'p'
    _write_scene(root, 0)
    _write_scene(root, 1)
    (root / 'scene_00001.json').write_text('{broken')
    with pytest.raises(SceneFormatError, match=r"scene_00001.json: field '<json>'"):
        NSSSceneDataset(str(root), pipeline=PIPE)
    ds = NSSSceneDataset(str(root), on_error='skip', pipeline=PIPE)
    assert len(ds) == 1 and ds.skipped == {'bad scene file': 1}
    with pytest.raises(FileNotFoundError, match='no scene_'):
        NSSSceneDataset(str(tmp_path / 'empty'), pipeline=PIPE)


def test_mask_size_mismatch_errors_unless_resize(tmp_path):
    root = tmp_path / 'p'
    rec = _write_scene(root, 0)
    Image.fromarray(np.full((24, 32), 255, np.uint8)).save(root / rec['objects'][0]['mask_path'])
    ds = NSSSceneDataset(str(root), pipeline=PIPE)
    with pytest.raises(ValueError, match=r"scene_00000.json: field 'objects\[0\].mask_path'.*32x24"):
        ds[0]
    ds = NSSSceneDataset(str(root), resize_masks=True, pipeline=PIPE)
    assert ds[0]['data_samples'].gt_instances.masks.shape[-2:] == (48, 64)


def test_zero_one_masks_and_stuff_classes(tmp_path):
    """0/1-valued mask PNGs count as masks (validator and dataset agree); a name mapped onto a stuff class
    of the training vocabulary yields a stuff segment."""
    from projects.dreammask.dreammask.processed_format import validate_dataset
    root = tmp_path / 'p'
    _write_scene(root, 0, objects=[('car', (4, 6, 20, 10)), ('Water', (30, 2, 20, 30))])
    for k in range(2):
        p = root / 'masks' / f'scene_00000_obj_{k:02d}.png'
        Image.fromarray((np.asarray(Image.open(p)) > 0).astype(np.uint8)).save(p)  # values 0/1
    assert validate_dataset(root)['errors'] == []
    ds = NSSSceneDataset(str(root), base_vocabulary=[['car'], ['water']], base_is_thing=[True, False],
                         pipeline=[dict(type='LoadImage'), dict(type='LoadNSSAnnotations')])
    out = ds[0]
    assert [s['isthing'] for s in out['segments_info']] == [True, False]
    assert [s['area'] for s in out['segments_info']] == [200, 600]
