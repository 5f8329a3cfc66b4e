"""Detectron2OptimWrapperConstructor: FC-CLIP's build_optimizer groups, parameter by parameter."""
import re

import pytest
import torch
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmengine.registry import init_default_scope
from torch import nn

import ovseg.engine  # noqa: F401
import ovseg.models  # noqa: F401
from ovseg.engine.optimizers import Detectron2OptimWrapperConstructor, detectron2_param_groups
from ovseg.models.utils.checkpoint_convert import DROPPED_KEYS, convert_key
from ovseg.registry import MODELS
from tests.helpers.fcclip_keys import official_entries

RECIPE = 'configs/fcclip/fcclip_convnext-large_8xb2-368750it_coco-panoptic.py'
BASE_LR, WD = 1e-4, 0.05

# Module types of the official FC-CLIP ConvNeXt-L model, read from the official sources: GroupNorm in the pixel
# decoder's input_proj (msdeformattn.py) and in adapter_/layer_ (detectron2 Conv2d norm=get_norm('GN')),
# LayerNorm in the encoder layers (norm1/norm2), the decoder layers (.norm), decoder_norm and
# _mask_pooling_proj[0] (fcclip_transformer_decoder.py); nn.Embedding for query_feat, query_embed and the
# decoder's level_embed (fcclip_transformer_decoder.py) and void_embedding (fcclip.py). The pixel decoder's
# transformer.level_embed and the decoder's logit_scale are bare nn.Parameters.
OFFICIAL_NORM_MODULES = [re.compile(p) for p in (
    r'^sem_seg_head\.pixel_decoder\.input_proj\.\d+\.1$',
    r'^sem_seg_head\.pixel_decoder\.transformer\.encoder\.layers\.\d+\.norm[12]$',
    r'^sem_seg_head\.pixel_decoder\.(adapter|layer)_\d+\.norm$',
    r'^sem_seg_head\.predictor\.transformer_(self_attention|cross_attention|ffn)_layers\.\d+\.norm$',
    r'^sem_seg_head\.predictor\.decoder_norm$',
    r'^sem_seg_head\.predictor\._mask_pooling_proj\.0$',
)]
OFFICIAL_EMBEDDING_MODULES = {'sem_seg_head.predictor.query_feat', 'sem_seg_head.predictor.query_embed',
                              'sem_seg_head.predictor.level_embed', 'void_embedding'}


def official_lr_wd(key):
    """train_net.py build_optimizer for one official parameter (SOLVER: BASE_LR 1e-4, WEIGHT_DECAY 0.05,
    WEIGHT_DECAY_NORM 0.0, WEIGHT_DECAY_EMBED 0.0, BACKBONE_MULTIPLIER 0.1)."""
    module = key.rsplit('.', 1)[0] if '.' in key else ''
    lr = BASE_LR * (0.1 if 'backbone' in module else 1.0)
    wd = WD
    if any(p.match(module) for p in OFFICIAL_NORM_MODULES) or module in OFFICIAL_EMBEDDING_MODULES:
        wd = 0.0
    return lr, wd


@pytest.fixture(scope='module')
def recipe_groups(repo_root):
    """The ConvNeXt-L recipe model (real head/decoder names and sizes) on the tiny random CLIP, which is frozen
    and therefore not in the optimizer either way."""
    init_default_scope('ovseg')
    cfg = Config.fromfile(str(repo_root / RECIPE))
    cfg.model.backbone = dict(type='CLIPBackbone', model_name='ovseg-tiny-convnext', pretrained=None,
                              allow_random_init=True)
    cfg.model.transformer_decoder.class_head.embed_dim = None  # from the CLIP (64 instead of 768)
    with pytest.warns(UserWarning, match='RANDOM'):
        model = MODELS.build(cfg.model)
    wrapper_cfg = cfg.optim_wrapper.to_dict()
    assert wrapper_cfg.pop('constructor') == 'Detectron2OptimWrapperConstructor'
    wrapper_cfg['type'] = 'OptimWrapper'  # AmpOptimWrapper needs CUDA; the groups do not depend on it
    wrapper_cfg.pop('loss_scale')
    paramwise = wrapper_cfg.pop('paramwise_cfg')
    wrapper = Detectron2OptimWrapperConstructor(wrapper_cfg, paramwise)(model)
    got = {}
    for group in wrapper.optimizer.param_groups:
        for name in group['param_names']:
            assert name not in got, name
            got[name] = (group['lr'], group['weight_decay'])
    return model, wrapper, got


def test_recipe_groups_equal_official_build_optimizer(recipe_groups):
    model, wrapper, got = recipe_groups
    expected = {}
    for key in official_entries('convnext_large'):
        if key.startswith('backbone.clip_model.') or key in DROPPED_KEYS:
            continue  # frozen CLIP; criterion buffer
        ovseg_key, group = convert_key(key)
        assert ovseg_key is not None, (key, group)
        expected[ovseg_key] = official_lr_wd(key)
    assert got == expected
    # the parameters the old name-pattern config got wrong or that are easy to get wrong
    assert got['pixel_decoder.transformer.level_embed'] == (BASE_LR, WD)  # bare nn.Parameter keeps decay
    assert got['transformer_decoder.level_embed.weight'] == (BASE_LR, 0.0)  # nn.Embedding
    assert got['void_embedding.weight'] == (BASE_LR, 0.0)
    assert got['transformer_decoder.class_head.logit_scale'] == (BASE_LR, WD)
    # exactly the trainable parameters are optimised; the CLIP is not
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert set(got) == trainable and not any(n.startswith('backbone.') for n in got)
    assert sum(p.numel() for g in wrapper.optimizer.param_groups for p in g['params']) == sum(
        p.numel() for p in model.parameters() if p.requires_grad)
    assert len(wrapper.optimizer.param_groups) == 2 and wrapper.clip_grad_kwargs['max_norm'] == 0.01


class _Toy(nn.Module):

    def __init__(self):
        super().__init__()
        self.backbone = nn.Sequential(nn.Conv2d(3, 4, 1), nn.BatchNorm2d(4))
        self.frozen = nn.Linear(2, 2)
        self.frozen.requires_grad_(False)
        self.head = nn.Linear(4, 4)
        self.shared = self.head  # the same parameters twice: counted once
        self.norm = nn.LayerNorm(4)
        self.emb = nn.Embedding(3, 4)
        self.level_embed = nn.Parameter(torch.zeros(2, 4))
        self.relative_position_bias_table = nn.Parameter(torch.zeros(3))


def test_param_group_rules_on_a_toy_model():
    groups = detectron2_param_groups(_Toy(), lr=1.0, weight_decay=0.5, backbone_multiplier=0.1,
                                     weight_decay_norm=0.01, weight_decay_embed=0.02)
    got = {n: (g['lr'], g['weight_decay']) for g in groups for n in g['param_names']}
    assert got == {
        'backbone.0.weight': (0.1, 0.5), 'backbone.0.bias': (0.1, 0.5),  # backbone multiplier
        'backbone.1.weight': (0.1, 0.01), 'backbone.1.bias': (0.1, 0.01),  # ... and a norm
        'head.weight': (1.0, 0.5), 'head.bias': (1.0, 0.5),
        'norm.weight': (1.0, 0.01), 'norm.bias': (1.0, 0.01),
        'emb.weight': (1.0, 0.02),
        'level_embed': (1.0, 0.5),  # bare parameter of the root module: base decay
        'relative_position_bias_table': (1.0, 0.0),  # detectron2's name rule
    }


def test_constructor_through_mmengine_config_and_errors():
    init_default_scope('ovseg')
    model = _Toy()
    wrapper = build_optim_wrapper(model, dict(
        constructor='Detectron2OptimWrapperConstructor', optimizer=dict(type='AdamW', lr=1e-3, weight_decay=0.1),
        paramwise_cfg=dict(backbone_multiplier=0.5)))
    lrs = sorted({g['lr'] for g in wrapper.optimizer.param_groups})
    assert lrs == [5e-4, 1e-3] and type(wrapper).__name__ == 'OptimWrapper'
    ddp_like = nn.Module()
    ddp_like.module = model
    assert len(Detectron2OptimWrapperConstructor(dict(optimizer=dict(type='SGD', lr=0.1, weight_decay=0)))(
        ddp_like).optimizer.param_groups) == 2  # wd 0 everywhere: one group per lr (0.1, backbone 0.01)
    with pytest.raises(KeyError, match=r"unknown paramwise_cfg keys \['norm_decay_mult'\]"):
        Detectron2OptimWrapperConstructor(dict(optimizer=dict(type='AdamW', lr=1, weight_decay=0)),
                                          dict(norm_decay_mult=0.0))
    with pytest.raises(KeyError, match='needs "weight_decay"'):
        Detectron2OptimWrapperConstructor(dict(optimizer=dict(type='AdamW', lr=1)))
    frozen = nn.Linear(2, 2).requires_grad_(False)
    with pytest.raises(ValueError, match='no trainable parameters'):
        detectron2_param_groups(frozen, 1.0, 0.0)
