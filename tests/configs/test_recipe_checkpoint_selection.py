"""FC-CLIP recipe: validation on ADE20K-150 panoptic every 5,000 iterations, best-PQ and every checkpoint kept."""
import pytest
from mmengine.config import Config

RECIPES = ('configs/fcclip/fcclip_convnext-large_8xb2-368750it_coco-panoptic.py',
           'configs/fcclip/fcclip_r50_8xb2-368750it_coco-panoptic.py')


@pytest.mark.parametrize('path', RECIPES)
def test_recipe_selects_on_ade20k_pq(repo_root, path):
    cfg = Config.fromfile(str(repo_root / path))
    assert cfg.train_dataloader.dataset.ann_file == 'annotations/panoptic_train2017.json'  # trains on COCO
    for loader in (cfg.val_dataloader, cfg.test_dataloader):
        ds = loader.dataset
        assert (ds.ann_file, ds.vocabulary) == ('ade20k_panoptic_val.json', 'ade20k_150')
        assert ds.data_root == 'data/ADEChallengeData2016/' and ds.test_mode
        assert ds.data_prefix.sem_seg == 'annotations_detectron2/validation/'
        assert loader.batch_size == 1 and set(loader) == {'batch_size', 'num_workers', 'persistent_workers',
                                                          'sampler', 'dataset'}
    assert [e.type for e in cfg.val_evaluator] == ['PanopticMetric', 'SemSegMetric', 'InstanceMaskAPMetric']
    assert cfg.train_cfg.val_interval == 5000  # TEST.EVAL_PERIOD
    ckpt = cfg.default_hooks.checkpoint
    assert ckpt.type == 'CheckpointHook' and ckpt.interval == 5000 and ckpt.by_epoch is False
    assert ckpt.save_best == 'panoptic/PQ' and ckpt.rule == 'greater'
    assert ckpt.max_keep_ckpts == -1  # every 5,000-iteration checkpoint is kept
    assert cfg.train_vocabulary == 'coco_panoptic'  # seen/unseen of ADE classes decided against COCO


def test_coco_validation_variant(repo_root):
    cfg = Config.fromfile(
        str(repo_root / 'configs/fcclip/fcclip_convnext-large_8xb2-368750it_coco-panoptic-cocoval.py'))
    ds = cfg.val_dataloader.dataset
    assert (ds.ann_file, ds.vocabulary, ds.data_root) == ('annotations/panoptic_val2017.json', 'coco_panoptic',
                                                          'data/coco/')
    assert 'sem_seg' not in ds.data_prefix and cfg.test_dataloader.dataset.ann_file == ds.ann_file
    assert [e.type for e in cfg.val_evaluator] == ['PanopticMetric', 'SemSegMetric', 'CocoInstanceAPMetric']
    ckpt = cfg.default_hooks.checkpoint
    assert (ckpt.save_best, ckpt.max_keep_ckpts, ckpt.interval) == ('panoptic/PQ', -1, 5000)
