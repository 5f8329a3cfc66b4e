"""CocoPanopticDataset(unlisted_segments=...) → LoadPanopticAnnotations(unknown_ids=None): deleted segments.

A segment deleted from the JSON but still in its PNG is an error by default (mismatched files) and VOID — no
training target — when the dataset says the deletion was on purpose; an explicit ``unknown_ids`` overrides.
"""
import json

import pytest
import torch

import ovseg.datasets.coco_panoptic as coco_panoptic
from ovseg.datasets import CocoPanopticDataset
from ovseg.datasets.transforms import LoadPanopticAnnotations
from ovseg.structures.panoptic_format import read_panoptic_png


def _pipeline(unknown_ids=None):
    loader = dict(type='LoadPanopticAnnotations')
    if unknown_ids is not None:
        loader['unknown_ids'] = unknown_ids
    return [dict(type='LoadImage'), loader, dict(type='PackSegInputs', with_instances=True)]


def _val(root, **kw):
    return CocoPanopticDataset(ann_file='panoptic_val.json', data_root=str(root),
                               data_prefix=dict(img='images/val', seg='panoptic_val'), **kw)


@pytest.fixture()
def deleted(toy_copy, edit_json):
    """Image 0 of ToyScenes val with its first thing segment deleted from the JSON (the PNG is unchanged)."""
    raw = json.loads((toy_copy / 'panoptic_val.json').read_text())
    cats = {c['id']: c for c in raw['categories']}
    segs = raw['annotations'][0]['segments_info']
    victim = next(s for s in segs if cats[s['category_id']]['isthing'])
    edit_json(toy_copy / 'panoptic_val.json',
              lambda d: d['annotations'][0].update(segments_info=[s for s in segs if s['id'] != victim['id']]))
    pan = read_panoptic_png(toy_copy / 'panoptic_val' / raw['annotations'][0]['file_name'])
    assert (pan == victim['id']).sum() > 0
    return toy_copy, victim, pan


def test_default_is_error_with_hint(deleted):
    root, victim, _ = deleted
    ds = _val(root, pipeline=_pipeline())
    assert ds.get_data_info(0)['unlisted_segments'] == 'error'
    with pytest.raises(ValueError) as info:
        ds[0]
    msg = str(info.value)
    assert f"panoptic_val/000000.png' contains segment id(s) [{victim['id']}] absent from segments_info" in msg
    assert "set unlisted_segments='no_target' on the dataset if segments were deleted on purpose" in msg


def test_no_target_makes_deleted_segment_void(deleted):
    root, victim, pan = deleted
    ds = _val(root, pipeline=_pipeline(), unlisted_segments='no_target')
    assert all(ds.get_data_info(i)['unlisted_segments'] == 'no_target' for i in range(len(ds)))
    sample = ds[0]['data_samples']
    gt = sample.gt_panoptic_seg.data[0].numpy()
    where = pan == victim['id']
    assert (gt[where] == 0).all() and (gt[~where] == pan[~where]).all()  # only the deleted pixels change
    assert (sample.gt_sem_seg.data[0].numpy()[where] == 255).all()
    kept = [s for s in ds.get_data_info(0)['segments_info'] if not s['iscrowd']]
    assert sample.gt_instances.labels.tolist() == [s['category_id'] for s in kept]
    assert not sample.gt_instances.masks[:, torch.from_numpy(where)].any()


def test_explicit_unknown_ids_override_the_dataset(deleted):
    root, victim, pan = deleted
    with pytest.raises(ValueError, match='absent from segments_info'):
        _val(root, pipeline=_pipeline('raise'), unlisted_segments='no_target')[0]
    gt = _val(root, pipeline=_pipeline('void'))[0]['data_samples'].gt_panoptic_seg.data[0].numpy()
    assert (gt[pan == victim['id']] == 0).all()


def test_untouched_json_loads_identically_either_way(toy_root):
    a = _val(toy_root, pipeline=_pipeline())[1]['data_samples']
    b = _val(toy_root, pipeline=_pipeline(), unlisted_segments='no_target')[1]['data_samples']
    assert (a.gt_panoptic_seg.data == b.gt_panoptic_seg.data).all()
    assert a.gt_instances.labels.tolist() == b.gt_instances.labels.tolist()


def test_bad_values(toy_root, tmp_path):
    with pytest.raises(ValueError, match=r"panoptic_val.json'\): unlisted_segments must be one of "
                                         r"\('error', 'no_target'\), got 'void'"):
        _val(toy_root, unlisted_segments='void')
    with pytest.raises(ValueError, match="unknown_ids must be None, 'raise' or 'void', got 'ignore'"):
        LoadPanopticAnnotations(unknown_ids='ignore')
    info = dict(_val(toy_root).get_data_info(0), unlisted_segments='maybe', ignore_index=255)
    info['segments_info'] = []  # every PNG id is now unlisted, so the policy is consulted
    with pytest.raises(ValueError, match=r"sample 0 has unlisted_segments='maybe'; expected one of "
                                         r"\('error', 'no_target'\)"):
        LoadPanopticAnnotations().transform(info)
    assert repr(LoadPanopticAnnotations()) == 'LoadPanopticAnnotations(with_seg_map=True, unknown_ids=None)'


def test_evaluation_dataset_with_no_target_warns(toy_root, monkeypatch):
    logged = []
    monkeypatch.setattr(coco_panoptic, 'print_log', lambda msg, **kw: logged.append((msg, kw.get('level'))))
    _val(toy_root, unlisted_segments='no_target')
    assert not any('evaluation dataset' in m for m, _ in logged)
    _val(toy_root, unlisted_segments='no_target', test_mode=True)
    assert any("unlisted_segments='no_target' on an evaluation dataset" in m and lvl == 30 for m, lvl in logged)
