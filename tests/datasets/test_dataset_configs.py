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
        cfg = Config(dict(val_dataloader=dict(dataset=cfg.ade20k_val_dataset), val_evaluator=cfg.ade20k_val_evaluator))
    loaders = [cfg.val_dataloader] + ([cfg.train_dataloader] if 'train_dataloader' in cfg else [])
    for loader in loaders:
        ds = loader.dataset
        assert DATASETS.get(ds.type) is not None
        for t in ds.pipeline:
            assert TRANSFORMS.get(t.type) is not None, t.type
        assert ds.pipeline[-1].type == 'PackSegInputs'
    assert {e.type for e in cfg.val_evaluator} <= {'PanopticMetric', 'SemSegMetric', 'InstanceMaskAPMetric'}


def test_expected_config_set():
    assert set(CONFIGS) == {'coco_panoptic.py', 'ade20k_panoptic.py', 'ade20k_panoptic_val.py', 'cityscapes_panoptic.py',
                            'mapillary_panoptic.py', 'ade20k_847.py', 'pascal_context_59.py',
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
