"""Dataset converters on tiny synthetic inputs (ToyScenes for COCO-format, hand-made ADE/Cityscapes files)."""
import importlib.util
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from ovseg.datasets import CocoPanopticDataset

TOOLS = Path(__file__).resolve().parents[2] / 'tools/dataset_converters'


def _load(name):
    spec = importlib.util.spec_from_file_location(name, TOOLS / f'{name}.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_coco_semantic_matches_toy_semantic(toy_root, tmp_path):
    conv = _load('prepare_coco_semantic_from_panoptic')
    out = tmp_path / 'sem'
    assert conv.main(['--panoptic-json', str(toy_root / 'panoptic_val.json'), '--panoptic-root',
                      str(toy_root / 'panoptic_val'), '--out-dir', str(out), '--workers', '1']) == 0
    files = sorted(p.name for p in (toy_root / 'semantic_val').iterdir())
    assert files == sorted(p.name for p in out.iterdir())
    for name in files:
        ours = cv2.imread(str(out / name), cv2.IMREAD_UNCHANGED)
        ref = cv2.imread(str(toy_root / 'semantic_val' / name), cv2.IMREAD_UNCHANGED)
        assert ours.dtype == np.uint8 and np.array_equal(ours, ref)


def test_coco_semantic_errors(toy_copy, tmp_path, edit_json):
    conv = _load('prepare_coco_semantic_from_panoptic')
    with pytest.raises(SystemExit, match='panoptic JSON not found'):
        conv.convert(str(tmp_path / 'x.json'), str(toy_copy), str(tmp_path / 'o'))
    edit_json(toy_copy / 'panoptic_val.json',
              lambda d: d['annotations'][0]['segments_info'][0].update(category_id=77))
    with pytest.raises(SystemExit, match=r'annotations\[0\].segments_info\[0\].category_id 77'):
        conv.convert(str(toy_copy / 'panoptic_val.json'), str(toy_copy / 'panoptic_val'), str(tmp_path / 'o'))


def test_ade20k_sem_seg_shift(tmp_path):
    conv = _load('prepare_ade20k_sem_seg')
    (tmp_path / 'annotations/validation').mkdir(parents=True)
    cv2.imwrite(str(tmp_path / 'annotations/validation/ADE_val_1.png'), np.array([[0, 1, 150]], np.uint8))
    assert conv.main(['--root', str(tmp_path), '--splits', 'validation', '--workers', '1']) == 0
    out = cv2.imread(str(tmp_path / 'annotations_detectron2/validation/ADE_val_1.png'), cv2.IMREAD_UNCHANGED)
    assert out.tolist() == [[255, 0, 149]]


def test_ade20k_panoptic(tmp_path):
    conv = _load('prepare_ade20k_panoptic')
    for d in ('annotations/validation', 'annotations_instance/validation', 'images/validation'):
        (tmp_path / d).mkdir(parents=True)
    sem = np.zeros((6, 8), np.uint8)
    sem[:3] = 1  # wall (stuff, id 0)
    sem[3:] = 3  # floor (stuff, id 2)
    sem[4:, :2] = 0  # unlabelled
    ins = np.zeros((6, 8, 3), np.uint8)  # RGB: R = instance category 1..100, G = instance id
    ins[1:3, 4:7, 0], ins[1:3, 4:7, 1] = 1, 1  # first thing class
    ins[4:6, 5:8, 0], ins[4:6, 5:8, 1] = 1, 2  # second instance, same class
    cv2.imwrite(str(tmp_path / 'annotations/validation/ADE_val_1.png'), sem)
    cv2.imwrite(str(tmp_path / 'annotations_instance/validation/ADE_val_1.png'), ins[..., ::-1])
    cv2.imwrite(str(tmp_path / 'images/validation/ADE_val_1.jpg'), np.zeros((6, 8, 3), np.uint8))
    assert conv.main(['--root', str(tmp_path), '--splits', 'validation', '--workers', '1']) == 0
    ds = CocoPanopticDataset(ann_file='ade20k_panoptic_val.json', data_root=str(tmp_path),
                             vocabulary='ade20k_150',
                             data_prefix=dict(img='images/validation', seg='ade20k_panoptic_val'),
                             pipeline=[dict(type='LoadImage'), dict(type='LoadPanopticAnnotations')])
    out = ds[0]
    first_thing = ds.metainfo['is_thing'].index(True)
    segs = {s['id']: s for s in out['segments_info']}
    assert sorted(s['category_id'] for s in segs.values()) == sorted([0, 2, first_thing, first_thing])
    assert (out['gt_seg_map'][1:3, 4:7] == first_thing).all() and (out['gt_seg_map'][4:, :2] == 255).all()
    assert sum(s['area'] for s in segs.values()) == 6 * 8 - 4


def test_cityscapes_panoptic_maps_label_ids_to_train_ids(tmp_path, capsys):
    conv = _load('prepare_cityscapes')
    city = tmp_path / 'gtFine/val/aachen'
    city.mkdir(parents=True)
    inst = np.full((8, 10), 7, np.int32)  # road (label id 7 → train id 0)
    inst[2:5, 2:6] = 26001  # car instance (26 → 13)
    inst[6:, 7:] = 24  # person crowd region (value < 1000)
    inst[0, :] = 0  # unlabeled → VOID
    cv2.imwrite(str(city / 'aachen_000000_000019_gtFine_instanceIds.png'), inst.astype(np.uint16))
    img_dir = tmp_path / 'leftImg8bit/val/aachen'
    img_dir.mkdir(parents=True)
    cv2.imwrite(str(img_dir / 'aachen_000000_000019_leftImg8bit.png'), np.zeros((8, 10, 3), np.uint8))
    polygons = dict(imgHeight=8, imgWidth=10, objects=[
        dict(label='road', polygon=[[0, 0], [10, 0], [10, 8], [0, 8]]),
        dict(label='car', polygon=[[2, 2], [6, 2], [6, 5], [2, 5]])])
    (city / 'aachen_000000_000019_gtFine_polygons.json').write_text(json.dumps(polygons))
    assert conv.main(['--root', str(tmp_path), '--splits', 'val']) == 0
    train_ids = cv2.imread(str(city / 'aachen_000000_000019_gtFine_labelTrainIds.png'), cv2.IMREAD_UNCHANGED)
    assert train_ids[0, 0] == 0 and train_ids[3, 4] == 13
    ds = CocoPanopticDataset(ann_file='gtFine/cityscapes_panoptic_val.json', data_root=str(tmp_path),
                             data_prefix=dict(img='leftImg8bit/val', seg='gtFine/cityscapes_panoptic_val'),
                             img_subdir_sep='_', vocabulary='cityscapes',
                             pipeline=[dict(type='LoadImage'), dict(type='LoadPanopticAnnotations'),
                                       dict(type='PackSegInputs', with_instances=True)])
    assert ds.metainfo['category_ids'][13] == 26 and ds.metainfo['classes'][13] == 'car'
    sample = ds[0]['data_samples']
    segs = {s['id']: s for s in sample.segments_info}
    assert segs[26001]['category_id'] == 13 and segs[26001]['isthing']
    assert segs[7]['category_id'] == 0 and segs[24]['iscrowd'] == 1 and segs[24]['category_id'] == 11
    assert sorted(sample.gt_instances.labels.tolist()) == [0, 13]  # crowd gives no target
    assert (sample.gt_sem_seg.data[0, 0] == 255).all()
    with pytest.raises(SystemExit, match='gtFine directory not found'):
        conv.prepare(str(tmp_path / 'nope'), ['val'])
