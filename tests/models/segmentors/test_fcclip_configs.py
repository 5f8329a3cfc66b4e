"""Every FC-CLIP config parses; the headline ConvNeXt-L config builds and runs on CPU with random weights."""
import glob
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope

import ovseg.engine  # noqa: F401
import ovseg.models  # noqa: F401
from ovseg.registry import MODELS
from ovseg.structures import SegDataSample

HEADLINE = 'configs/fcclip/fcclip_convnext-large_8xb2-368750it_coco-panoptic.py'

TASKS = {  # per FC-CLIP eval yaml: (panoptic_on, semantic_on, instance_on)
    'ade20k-150': (True, True, True), 'coco-panoptic': (True, True, True), 'cityscapes': (True, True, True),
    'mapillary-vistas': (True, True, False), 'ade20k-847': (False, True, False),
    'pascal-context-59': (False, True, False), 'pascal-context-459': (False, True, False),
    'pascal-voc-20': (False, True, False), 'pascal-voc-21': (False, True, False),
}


def require_fcclip_modules():
    """Register the FC-CLIP modules (pixel decoder, decoder, criterion) before building configs."""


def _configs(repo_root):
    files = sorted(glob.glob(str(repo_root / 'configs' / 'fcclip' / '*.py')))
    files += sorted(glob.glob(str(repo_root / 'configs' / '_base_' / 'models' / 'fcclip_*.py')))
    assert len(files) >= 22
    return files


def test_every_config_parses_with_recipe_values(repo_root):
    for path in _configs(repo_root):
        cfg = Config.fromfile(path)
        name = osp.basename(path)
        assert cfg.model.type == 'FCCLIP', name
        if '_eval_' in name:
            dataset = name.split('_eval_')[1][:-3]
            t = cfg.model.test_cfg
            assert (t.panoptic_on, t.semantic_on, t.instance_on) == TASKS[dataset], name
            assert cfg.train_vocabulary == 'coco_panoptic'
            assert any(h['type'] == 'VocabularyHook' for h in cfg.custom_hooks)
            sizes = [s for s in cfg.test_dataloader.dataset.pipeline if s['type'] == 'ResizeShortestEdge'][0]
            big = dataset in ('cityscapes', 'mapillary-vistas')
            assert (sizes['short_edge_length'], sizes['max_size']) == ((1024, 2560) if big else
                                                                       (800, 1333)), name
            r50 = name.startswith('fcclip_r50')
            assert cfg.model.test_cfg.ensemble_on_valid_mask is r50
            assert cfg.model.transformer_decoder.class_head.embed_dim == (1024 if r50 else 768)
    cfg = Config.fromfile(str(repo_root / HEADLINE))
    assert cfg.train_dataloader.batch_size == 2 and cfg.train_cfg.max_iters == 368750
    assert cfg.optim_wrapper.optimizer.lr == 1e-4 and cfg.optim_wrapper.optimizer.weight_decay == 0.05
    assert cfg.optim_wrapper.clip_grad.max_norm == 0.01
    assert cfg.model.transformer_decoder.num_queries == 250 and cfg.model.transformer_decoder.dec_layers == 9
    assert cfg.model.test_cfg.geometric_ensemble_alpha == 0.4
    assert cfg.model.test_cfg.geometric_ensemble_beta == 0.8


@pytest.mark.slow
def test_headline_convnext_large_builds_and_runs_on_cpu(repo_root):
    require_fcclip_modules()
    init_default_scope('ovseg')
    cfg = Config.fromfile(str(repo_root / HEADLINE))
    cfg.model.backbone.update(pretrained=None, allow_random_init=True)  # no weights on a fresh machine
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    n_params = sum(p.numel() for p in model.parameters())
    assert n_params > 200e6  # ConvNeXt-L CLIP (~200M incl. text tower) + heads
    model.set_vocabulary([['person', 'man'], ['sky']], [True, False], split='train')
    model.set_vocabulary([['person'], ['sky'], ['cow']], [True, False, True], split='test')
    model.eval()
    x = torch.randint(0, 256, (1, 3, 64, 64), dtype=torch.uint8)
    sample = SegDataSample(metainfo=dict(img_shape=(64, 64), ori_shape=(64, 64)))
    with torch.no_grad():
        out = model.test_step(dict(inputs=[x[0]], data_samples=[sample]))[0]
        tensors = model(model.data_preprocessor(dict(inputs=[x[0]]), False)['inputs'], mode='tensor')
    assert out.pred_panoptic_seg.data.shape == (1, 64, 64)
    assert out.pred_sem_seg.data.shape == (1, 64, 64)
    assert tensors['pred_logits'].shape == (1, 250, 4)  # 3 test classes + void
    assert tensors['pred_masks'].shape[:2] == (1, 250)
    assert len(tensors['aux_outputs']) == 9
