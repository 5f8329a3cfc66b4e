"""The headline DreamMask config composes and builds; ablations change exactly what their names say."""
import copy

import pytest
from mmengine.config import Config
from mmengine.registry import init_default_scope

HEADLINE = 'configs/dreammask_fcclip.py'  # -> configs/dreammask/dreammask_fcclip-convnext-large_8xb2-...
CONFIGS = {
    'dreammask/dreammask-lambda0.05_fcclip-convnext-large_8xb2-368750it_coco-panoptic-nss.py': ('sra.lambda_sra', 0.05),
    'dreammask/dreammask-lambda0.2_fcclip-convnext-large_8xb2-368750it_coco-panoptic-nss.py': ('sra.lambda_sra', 0.2),
    'dreammask/dreammask-sra-off_fcclip-convnext-large_8xb2-368750it_coco-panoptic-nss.py': ('sra.lambda_sra', 0.0),
    'dreammask/dreammask-bank8_fcclip-convnext-large_8xb2-368750it_coco-panoptic-nss.py': ('sra.memory_bank_size', 8),
    'dreammask/dreammask-bank128_fcclip-convnext-large_8xb2-368750it_coco-panoptic-nss.py':
        ('sra.memory_bank_size', 128),
    'dreammask/dreammask_fcclip-r50_8xb2-368750it_coco-panoptic-nss.py': ('backbone.model_name', 'RN50'),
}


def _get(model, dotted):
    for k in dotted.split('.'):
        model = model[k]
    return model


def test_headline_recipe(repo_root):
    cfg = Config.fromfile(str(repo_root / HEADLINE))
    assert cfg.model.type == 'DreamMaskFCCLIP'
    assert cfg.model.sra.lambda_sra == 0.1 and cfg.model.sra.memory_bank_size == 32
    assert cfg.model.backbone.model_name == 'convnext_large_d_320'
    assert cfg.train_cfg.max_iters == 368750 and cfg.optim_wrapper.optimizer.lr == 1e-4
    assert cfg.optim_wrapper.type == 'AmpOptimWrapper' and cfg.optim_wrapper.clip_grad.max_norm == 0.01
    ds = cfg.train_dataloader.dataset
    assert ds.type == 'RealSyntheticDataset' and ds.real.type == 'CocoPanopticDataset'
    assert ds.synthetic.type == 'NSSSceneDataset'
    assert cfg.train_dataloader.sampler.type == 'RealSyntheticMixSampler'
    assert cfg.train_dataloader.sampler.num_synthetic < cfg.train_dataloader.sampler.batch_size


@pytest.mark.parametrize('path', sorted(CONFIGS))
def test_ablations_change_one_thing(repo_root, path):
    base = Config.fromfile(str(repo_root / HEADLINE))
    cfg = Config.fromfile(str(repo_root / 'configs' / path))
    key, value = CONFIGS[path]
    assert _get(cfg.model, key) == value != _get(base.model, key)


def test_synthetic_only_and_ratio_configs(repo_root):
    only = Config.fromfile(str(repo_root / 'configs/dreammask/dreammask_fcclip-convnext-large_8xb2-368750it_nss.py'))
    assert only.train_dataloader.dataset.type == 'NSSSceneDataset'
    ratio = Config.fromfile(str(repo_root / 'configs/dreammask' /
                                'dreammask_fcclip-convnext-large_4xb4-368750it_coco-panoptic-nss-syn0.25.py'))
    s = ratio.train_dataloader.sampler
    assert (s.batch_size, s.num_synthetic, ratio.train_dataloader.batch_size) == (4, 1, 4)


@pytest.mark.slow
def test_headline_model_builds_with_random_clip(repo_root):
    import torch

    import projects.dreammask.dreammask  # noqa: F401
    from ovseg.registry import MODELS
    init_default_scope('ovseg')
    cfg = Config.fromfile(str(repo_root / HEADLINE))
    m = copy.deepcopy(cfg.model)
    m.backbone.update(pretrained=None, allow_random_init=True)
    model = MODELS.build(m)
    assert model.sra.memory.bank.shape == (645, 32, 768)
    assert sum(p.numel() for p in model.parameters() if p.requires_grad) > 1e6
    assert not any(p.requires_grad for p in model.backbone.parameters())
    assert torch.equal(model.sra.memory.count, torch.zeros(645, dtype=torch.long))


EVAL_DATASETS = ('ade20k-847', 'pascal-context-459', 'ade20k-150', 'pascal-context-59', 'pascal-voc-20',
                 'pascal-voc-21', 'cityscapes', 'coco-panoptic', 'mapillary-vistas')


@pytest.mark.parametrize('dataset', EVAL_DATASETS)
def test_eval_configs_state_the_protocol_of_the_training_config(repo_root, dataset):
    """DreamMask's Table 1 sets (+ the panoptic ones): FC-CLIP's eval set-up of the dataset, the DreamMask model
    with the headline SRA bank, and the same seen/unseen protocol as the headline config's validation."""
    train = Config.fromfile(str(repo_root / HEADLINE))
    cfg = Config.fromfile(str(repo_root / f'configs/dreammask/dreammask_fcclip-convnext-large_eval_{dataset}.py'))
    fcclip = Config.fromfile(str(repo_root / f'configs/fcclip/fcclip_convnext-large_eval_{dataset}.py'))
    assert cfg.model.type == 'DreamMaskFCCLIP' and cfg.model.sra == train.model.sra
    assert cfg.seen_vocabulary == train.seen_vocabulary == 'coco_panoptic'
    assert cfg.test_dataloader == fcclip.test_dataloader and cfg.test_evaluator == fcclip.test_evaluator
    assert cfg.model.test_cfg == fcclip.model.test_cfg
    other = Config.fromfile(str(repo_root / 'configs/dreammask/'
                                'dreammask_fcclip-convnext-large_eval_ade20k-150_seen-training-vocabulary.py'))
    assert other.seen_vocabulary is None
