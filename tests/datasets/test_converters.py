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


def _ade_inputs(root):
    """12x16 ADE-like labels: a stuff region ('sky') that a thing covers completely, stuff partly covered by
    things, thing-class semantic pixels without an instance, and unlabelled pixels."""
    for d in ('annotations/validation', 'annotations_instance/validation', 'images/validation'):
        (root / d).mkdir(parents=True)
    sem = np.zeros((12, 16), np.uint8)
    sem[:5] = 1  # wall (stuff, id 0)
    sem[5:] = 4  # floor (stuff, id 3)
    sem[0:2, 12:16] = 3  # sky (stuff, id 2): entirely under instance 1 below
    sem[10:, :3] = 0  # unlabelled
    sem[8:10, 0:2] = 8  # bed (thing, id 7) pixels without an instance -> VOID in the panoptic map
    ins = np.zeros((12, 16, 3), np.uint8)  # RGB: R = instance category 1..100, G = instance id
    ins[0:3, 11:16, 0], ins[0:3, 11:16, 1] = 1, 1  # 1st thing class (bed) over sky and wall
    ins[6:9, 5:9, 0], ins[6:9, 5:9, 1] = 1, 2  # second bed, on the floor
    ins[3:7, 0:4, 0], ins[3:7, 0:4, 1] = 2, 3  # 2nd thing class (windowpane) across wall and floor
    cv2.imwrite(str(root / 'annotations/validation/ADE_val_1.png'), sem)
    cv2.imwrite(str(root / 'annotations_instance/validation/ADE_val_1.png'), ins[..., ::-1])
    cv2.imwrite(str(root / 'images/validation/ADE_val_1.jpg'), np.zeros((12, 16, 3), np.uint8))
    return sem, ins


def _official_ade_panoptic(sem_seg, ins_seg, categories, out_png):
    """Transcription of the per-image loop of FC-CLIP/Mask2Former ``datasets/prepare_ade20k_pan_seg.py``
    (panopticapi ``IdGenerator`` colours, stuff pasted first and measured before the things)."""
    from panopticapi.utils import IdGenerator
    from PIL import Image
    categories_dict = {c['id']: c for c in categories}
    map_id = {i: c['id'] for i, c in enumerate(c for c in categories if c['isthing'])}  # catid_mapping.txt
    pan_seg = np.zeros(sem_seg.shape + (3,), dtype=np.uint8)
    id_generator = IdGenerator(categories_dict)
    semantic_cat_ids = sem_seg - 1
    instance_cat_ids = ins_seg[..., 0] - 1
    instance_ins_ids = ins_seg[..., 1]
    segm_info = []

    def bbox(mask):
        hor_idx = np.nonzero(np.sum(mask, axis=0))[0]
        vert_idx = np.nonzero(np.sum(mask, axis=1))[0]
        x, y = hor_idx[0], vert_idx[0]
        return [int(x), int(y), int(hor_idx[-1] - x + 1), int(vert_idx[-1] - y + 1)]

    for semantic_cat_id in np.unique(semantic_cat_ids):
        if semantic_cat_id == 255 or categories_dict[semantic_cat_id]['isthing']:
            continue
        mask = semantic_cat_ids == semantic_cat_id
        segment_id, color = id_generator.get_id_and_color(semantic_cat_id)
        pan_seg[mask] = color
        segm_info.append({'id': int(segment_id), 'category_id': int(semantic_cat_id), 'area': int(np.sum(mask)),
                          'bbox': bbox(mask), 'iscrowd': 0})
    for thing_id in np.unique(instance_ins_ids):
        if thing_id == 0:
            continue
        mask = instance_ins_ids == thing_id
        instance_cat_id = np.unique(instance_cat_ids[mask])
        assert len(instance_cat_id) == 1
        semantic_cat_id = map_id[instance_cat_id[0]]
        segment_id, color = id_generator.get_id_and_color(semantic_cat_id)
        pan_seg[mask] = color
        segm_info.append({'id': int(segment_id), 'category_id': int(semantic_cat_id), 'area': int(np.sum(mask)),
                          'bbox': bbox(mask), 'iscrowd': 0})
    Image.fromarray(pan_seg).save(out_png)
    return segm_info


def test_ade20k_panoptic_json_equals_official(tmp_path):
    import contextlib
    import io

    from panopticapi.evaluation import pq_compute
    conv = _load('prepare_ade20k_panoptic')
    sem, ins = _ade_inputs(tmp_path)
    assert conv.main(['--root', str(tmp_path), '--splits', 'validation', '--workers', '1']) == 0
    ours = json.loads((tmp_path / 'ade20k_panoptic_val.json').read_text())
    (tmp_path / 'official').mkdir()
    official = _official_ade_panoptic(sem, ins, ours['categories'], tmp_path / 'official/ADE_val_1.png')

    def key(s):
        return (s['category_id'], s['area'], tuple(s['bbox']), s['iscrowd'])

    segs = ours['annotations'][0]['segments_info']
    assert sorted(map(key, segs)) == sorted(map(key, official))
    by_cat = {s['category_id']: s for s in segs if s['category_id'] in (0, 2)}
    assert by_cat[0]['area'] == 72 and by_cat[2]['area'] == 8  # pre-paste areas; sky is absent from the PNG
    pan = cv2.imread(str(tmp_path / 'ade20k_panoptic_val/ADE_val_1.png'))[..., ::-1].astype(np.int64)
    pan = pan[..., 0] + 256 * pan[..., 1] + 65536 * pan[..., 2]
    assert by_cat[2]['id'] not in pan and (pan == by_cat[0]['id']).sum() == 72 - 7 - 8
    # PQ depends only on segments, categories and JSON areas: the same prediction scores the same against
    # our files and the official ones, and below 100 although it reproduces the PNG exactly.
    (tmp_path / 'pred').mkdir()
    cv2.imwrite(str(tmp_path / 'pred/ADE_val_1.png'),
                cv2.imread(str(tmp_path / 'ade20k_panoptic_val/ADE_val_1.png')))
    present = set(np.unique(pan).tolist())
    pred_json = dict(annotations=[dict(image_id='ADE_val_1', file_name='ADE_val_1.png',
                                       segments_info=[dict(id=s['id'], category_id=s['category_id'])
                                                      for s in segs if s['id'] in present])])
    (tmp_path / 'pred.json').write_text(json.dumps(pred_json))
    off_json = dict(ours, annotations=[dict(ours['annotations'][0], segments_info=official)])
    (tmp_path / 'official.json').write_text(json.dumps(off_json))
    with contextlib.redirect_stdout(io.StringIO()):
        r_ours = pq_compute(str(tmp_path / 'ade20k_panoptic_val.json'), str(tmp_path / 'pred.json'),
                            str(tmp_path / 'ade20k_panoptic_val'), str(tmp_path / 'pred'))
        r_off = pq_compute(str(tmp_path / 'official.json'), str(tmp_path / 'pred.json'),
                           str(tmp_path / 'official'), str(tmp_path / 'pred'))
    for split in ('All', 'Things', 'Stuff'):
        assert r_ours[split] == pytest.approx(r_off[split])
    assert r_ours['Things']['pq'] == pytest.approx(1.0) and r_ours['Stuff']['pq'] < 0.75
    # the dataset reads it back: VOID where a thing class has no instance, the vanished sky still listed
    ds = CocoPanopticDataset(ann_file='ade20k_panoptic_val.json', data_root=str(tmp_path),
                             vocabulary='ade20k_150',
                             data_prefix=dict(img='images/validation', seg='ade20k_panoptic_val'),
                             pipeline=[dict(type='LoadImage'), dict(type='LoadPanopticAnnotations')])
    out = ds[0]
    assert sorted(s['category_id'] for s in out['segments_info']) == [0, 2, 3, 7, 7, 8]
    assert (out['gt_seg_map'][8:10, 0:2] == 255).all() and (out['gt_seg_map'][10:, :3] == 255).all()


def test_ade20k_eval_config_scores_sceneparsing_labels(tmp_path):
    """FC-CLIP's ADE-150 mIoU GT is annotations_detectron2 (SceneParsing labels), not the panoptic-derived map:
    thing-class pixels without an instance keep their class there instead of becoming VOID."""
    from mmengine.config import Config

    from ovseg.registry import DATASETS
    _ade_inputs(tmp_path)
    assert _load('prepare_ade20k_panoptic').main(['--root', str(tmp_path), '--splits', 'validation',
                                                  '--workers', '1']) == 0
    assert _load('prepare_ade20k_sem_seg').main(['--root', str(tmp_path), '--splits', 'validation',
                                                 '--workers', '1']) == 0
    cfg = Config.fromfile(str(TOOLS.parents[1] / 'configs/_base_/datasets/ade20k_panoptic.py'))
    ds_cfg = cfg.val_dataloader.dataset
    ds_cfg.data_root = str(tmp_path)
    ds_cfg.pipeline = [t for t in ds_cfg.pipeline if t.type != 'ResizeShortestEdge']
    sample = DATASETS.build(ds_cfg)[0]['data_samples']
    sem = sample.gt_sem_seg.data[0].numpy()
    assert (sem[8:10, 0:2] == 7).all()  # bed pixels without an instance: class 7, not 255
    assert (sem[10:, :3] == 255).all() and (sem[0:2, 12:16] == 2).all()  # unlabelled; sky under a thing
    assert sample.gt_panoptic_seg.data.shape == (1, 12, 16)


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
