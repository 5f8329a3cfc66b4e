"""Every dataset base config parses, names registered types and builds on ToyScenes where data exists."""
from pathlib import Path

import pytest
from mmengine.config import Config

from ovseg.registry import DATASETS, TRANSFORMS

CONFIG_DIR = Path(__file__).resolve().parents[2] / 'configs/_base_/datasets'
CONFIGS = sorted(p.name for p in CONFIG_DIR.glob('*.py'))


@pytest.mark.parametrize('name', CONFIGS)
def test_config_types_are_registered(name):
    cfg = Config.fromfile(str(CONFIG_DIR / name))
    if 'val_dataloader' not in cfg:  # a variables-only base (ade20k_panoptic_val.py)
        cfg = Config(dict(val_dataloader=dict(dataset=cfg.ade20k_val_dataset),
                          val_evaluator=cfg.ade20k_val_evaluator))
    loaders = [cfg.val_dataloader] + ([cfg.train_dataloader] if 'train_dataloader' in cfg else [])
    for loader in loaders:
        ds = loader.dataset
        assert DATASETS.get(ds.type) is not None
        for t in ds.pipeline:
            assert TRANSFORMS.get(t.type) is not None, t.type
        assert ds.pipeline[-1].type == 'PackSegInputs'
    from ovseg.registry import METRICS
    for e in cfg.val_evaluator:
        assert METRICS.get(e.type) is not None, e.type


def test_expected_config_set():
    assert set(CONFIGS) == {'coco_panoptic.py', 'coco_panoptic_ade20k_val.py', 'ade20k_panoptic.py',
                            'ade20k_panoptic_val.py',
                            'cityscapes_panoptic.py', 'cityscapes_panoptic_inout.py', 'mapillary_panoptic.py',
                            'ade20k_847.py', 'pascal_context_59.py',
                            'pascal_context_459.py', 'pascal_voc_20.py', 'pascal_voc_21.py', 'toy_scenes.py',
                            'panoptic_eval.py', 'sem_seg_eval.py'}  # the last two: shared eval bases


def test_coco_lsj_recipe():
    cfg = Config.fromfile(str(CONFIG_DIR / 'coco_panoptic.py'))
    steps = {t.type: t for t in cfg.train_dataloader.dataset.pipeline}
    assert (steps['RandomResizeScale'].min_scale, steps['RandomResizeScale'].max_scale) == (0.1, 2.0)
    assert tuple(steps['FixedSizeCrop'].crop_size) == (1024, 1024)
    assert cfg.train_dataloader.batch_size * 8 == 16
    resize = [t for t in cfg.test_dataloader.dataset.pipeline if t.type == 'ResizeShortestEdge'][0]
    assert (resize.short_edge_length, resize.max_size) == (800, 1333)


def test_toy_config_builds(toy_root, tmp_path):
    cfg = Config.fromfile(str(CONFIG_DIR / 'toy_scenes.py'))
    ds_cfg = cfg.train_dataloader.dataset
    ds_cfg.data_root = str(tmp_path / 'toy')
    ds_cfg.generate = dict(ds_cfg.generate, num_train=3, num_val=2)
    ds = DATASETS.build(ds_cfg)
    out = ds[0]
    assert out['inputs'].shape == (3, 128, 128)
    assert 'star' in ds.metainfo['novel_classes'] and 'star' not in ds.metainfo['classes']


def test_instance_ap_protocol_per_dataset():
    """Panoptic-derived AP only for ADE20K (its official protocol); COCO and Cityscapes use their own GT."""
    def evaluators(name):
        return {e.type: e for e in Config.fromfile(str(CONFIG_DIR / name)).val_evaluator}
    assert set(evaluators('ade20k_panoptic.py')) == {'PanopticMetric', 'SemSegMetric', 'InstanceMaskAPMetric'}
    coco = evaluators('coco_panoptic.py')
    assert 'InstanceMaskAPMetric' not in coco
    assert coco['CocoInstanceAPMetric'].ann_file == 'data/coco/annotations/instances_val2017.json'
    cityscapes = evaluators('cityscapes_panoptic.py')
    assert 'InstanceMaskAPMetric' not in cityscapes
    assert cityscapes['CityscapesInstanceAPMetric'].gt_dir == 'data/cityscapes/gtFine/val'
    assert set(evaluators('mapillary_panoptic.py')) == {'PanopticMetric', 'SemSegMetric'}  # INSTANCE_ON False


def test_separate_semantic_gt_where_fcclip_registers_one():
    """ADE20K-150 and Mapillary score mIoU on their semantic releases, not on maps derived from panoptic PNGs."""
    for name, sem_dir, ignore in (('ade20k_panoptic.py', 'annotations_detectron2/validation/', None),
                                  ('mapillary_panoptic.py', 'validation/labels/', 65)):
        ds = Config.fromfile(str(CONFIG_DIR / name)).val_dataloader.dataset
        assert ds.data_prefix['sem_seg'] == sem_dir
        steps = {t.type: t for t in ds.pipeline}
        assert steps['LoadSemSegAnnotations'].path_key == 'sem_seg_map_path'
        assert steps['LoadPanopticAnnotations'].with_seg_map is False
        assert ds.get('metainfo', {}).get('ignore_index') == ignore
