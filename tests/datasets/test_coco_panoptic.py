"""CocoPanopticDataset on ToyScenes: metainfo, data_list and every bad-input error."""
import json

import cv2
import numpy as np
import pytest

from ovseg.datasets import CocoPanopticDataset
from ovseg.registry import DATASETS

PIPE = [dict(type='LoadImage'), dict(type='LoadPanopticAnnotations')]


def _val(root, **kw):
    return CocoPanopticDataset(ann_file='panoptic_val.json', data_root=str(root),
                               data_prefix=dict(img='images/val', seg='panoptic_val'), **kw)


def test_metainfo_and_data_list(toy_root):
    ds = DATASETS.build(dict(type='CocoPanopticDataset', ann_file='panoptic_val.json',
                             data_root=str(toy_root),
                             data_prefix=dict(img='images/val', seg='panoptic_val'), vocabulary='toy_scenes'))
    meta = ds.metainfo
    assert len(ds) == 6
    assert meta['classes'][:2] == ('ball', 'box') and len(meta['classes']) == 11
    assert meta['class_synonyms'][0] == ['ball', 'sphere', 'orb']
    assert meta['category_ids'] == list(range(1, 12))
    assert meta['is_thing'] == [True] * 6 + [False] * 5
    assert meta['thing_classes'] == ('ball', 'box', 'sign', 'ring', 'star', 'cross')
    assert meta['stuff_classes'] == ('sky', 'wall', 'grass', 'water', 'sand')
    assert meta['ignore_index'] == 255 and meta['label_divisor'] == 1000 and len(meta['palette']) == 11
    info = ds.get_data_info(0)
    assert info['img_path'].endswith('images/val/000000.png')
    assert info['seg_map_path'].endswith('panoptic_val/000000.png')
    assert (info['height'], info['width']) == (64, 80) and info['img_id'] == 0
    seg = info['segments_info'][0]
    assert set(seg) == {'id', 'category_id', 'iscrowd', 'area', 'isthing', 'bbox'}
    # contiguous category = rank of the dataset id (ids 1..11 → 0..10)
    raw = json.loads((toy_root / 'panoptic_val.json').read_text())
    assert seg['category_id'] == raw['annotations'][0]['segments_info'][0]['category_id'] - 1


def test_rank_mapping_of_sparse_ids(toy_copy, edit_json):
    """Sparse ids (as Cityscapes label ids 7..33) map to their rank among the JSON categories."""
    def remap(doc):
        for c in doc['categories']:
            c['id'] = c['id'] * 3 + 4
        for a in doc['annotations']:
            for s in a['segments_info']:
                s['category_id'] = s['category_id'] * 3 + 4
    edit_json(toy_copy / 'panoptic_val.json', remap)
    ds = _val(toy_copy)
    assert ds.metainfo['category_ids'] == [i * 3 + 4 for i in range(1, 12)]
    raw = json.loads((toy_copy / 'panoptic_val.json').read_text())
    assert ([s['category_id'] for s in ds.get_data_info(0)['segments_info']]
            == [(s['category_id'] - 4) // 3 - 1 for s in raw['annotations'][0]['segments_info']])


def test_lazy_init_has_metainfo(toy_root):
    ds = _val(toy_root, lazy_init=True)
    assert len(ds.metainfo['classes']) == 11 and not ds._fully_initialized
    assert len(ds) == 6


def test_filter_empty_gt(toy_copy, edit_json):
    edit_json(toy_copy / 'panoptic_val.json', lambda d: d['annotations'][0].update(segments_info=[]))
    assert len(_val(toy_copy, filter_cfg=dict(filter_empty_gt=True))) == 5
    assert len(_val(toy_copy, test_mode=True, filter_cfg=dict(filter_empty_gt=True))) == 6


@pytest.mark.parametrize('mutate,err,needle', [
    (lambda d: d['annotations'][1]['segments_info'][0].update(category_id=99), ValueError,
     'annotations[1].segments_info[0].category_id 99 is not in categories'),
    (lambda d: d['annotations'][0]['segments_info'][1].update(
        id=d['annotations'][0]['segments_info'][0]['id']),
     ValueError, 'annotations[0].segments_info[1].id'),
    (lambda d: d['annotations'][2].update(image_id=12345), ValueError,
     'annotations[2].image_id 12345 has no matching entry'),
    (lambda d: d.update(annotations=[]), ValueError, 'dataset is empty'),
    (lambda d: d['categories'].append(dict(d['categories'][0])), ValueError, 'duplicate category id'),
    (lambda d: d['images'].append(dict(d['images'][0])), ValueError, 'images[6].id 0 is duplicated'),
    (lambda d: d.pop('categories'), ValueError, "field 'categories'"),
])
def test_bad_json(toy_copy, edit_json, mutate, err, needle):
    edit_json(toy_copy / 'panoptic_val.json', mutate)
    with pytest.raises(err) as info:
        _val(toy_copy)
    assert needle in str(info.value) and 'panoptic_val.json' in str(info.value)


def test_missing_ann_file(tmp_path):
    with pytest.raises(FileNotFoundError, match='nope.json'):
        CocoPanopticDataset(ann_file='nope.json', data_root=str(tmp_path))


def test_vocabulary_size_mismatch(toy_root):
    with pytest.raises(ValueError, match="vocabulary 'cityscapes' has 19 classes"):
        _val(toy_root, vocabulary='cityscapes')


def test_derived_metainfo_cannot_be_overridden(toy_root):
    with pytest.raises(ValueError, match="metainfo\\['classes'\\]"):
        _val(toy_root, metainfo=dict(classes=('a',)))
    assert _val(toy_root, metainfo=dict(dataset_name='toy')).metainfo['dataset_name'] == 'toy'


def test_check_files_and_missing_files(toy_copy):
    (toy_copy / 'images/val/000002.png').unlink()
    with pytest.raises(FileNotFoundError, match='img_path of image 2 not found: .*000002.png'):
        _val(toy_copy, check_files=True)
    ds = _val(toy_copy, pipeline=PIPE)  # without the up-front check the loader names the file
    with pytest.raises(FileNotFoundError, match="cannot read image '.*images/val/000002.png'"):
        ds[2]
    (toy_copy / 'panoptic_val/000003.png').unlink()
    with pytest.raises(FileNotFoundError, match='panoptic PNG not found: .*panoptic_val/000003.png'):
        ds[3]


def test_png_id_missing_from_segments_info(toy_copy, edit_json):
    def drop(doc):
        doc['annotations'][0]['segments_info'] = doc['annotations'][0]['segments_info'][:-1]
    raw = json.loads((toy_copy / 'panoptic_val.json').read_text())
    dropped = raw['annotations'][0]['segments_info'][-1]['id']
    edit_json(toy_copy / 'panoptic_val.json', drop)
    ds = _val(toy_copy, pipeline=PIPE)
    with pytest.raises(ValueError, match=rf"panoptic_val/000000.png' contains segment id\(s\) \[{dropped}\]"):
        ds[0]
    ds = _val(toy_copy, pipeline=[dict(type='LoadImage'),
                                  dict(type='LoadPanopticAnnotations', unknown_ids='void')])
    out = ds[0]
    assert dropped not in np.unique(out['gt_pan_id'])


def test_png_size_mismatch(toy_copy):
    png = toy_copy / 'panoptic_val/000001.png'
    cv2.imwrite(str(png), cv2.resize(cv2.imread(str(png)), (40, 32), interpolation=cv2.INTER_NEAREST))
    ds = _val(toy_copy, pipeline=PIPE)
    with pytest.raises(ValueError) as info:
        ds[1]
    msg = str(info.value)
    assert 'panoptic_val/000001.png' in msg and 'images/val/000001.png' in msg
    assert '40x32' in msg and '80x64' in msg


def test_cityscapes_city_subdirs(toy_copy, edit_json):
    """img_subdir_sep='_' looks images up in a folder named by the file-name prefix (Cityscapes)."""
    def rename(doc):
        for im in doc['images']:
            im['file_name'] = 'city_' + im['file_name']
    edit_json(toy_copy / 'panoptic_val.json', rename)
    ds = _val(toy_copy, img_subdir_sep='_')
    assert ds.get_data_info(0)['img_path'].endswith('images/val/city/city_000000.png')
