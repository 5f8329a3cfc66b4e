"""Tiny SEEM fixtures: the tiny model config, official SEEM v1 decoder names/shapes, a fake official checkpoint.

The decoder table is written from SEEM v1.0 ``modeling/interface/seem_v1.py`` (``SEEMDecoder.__init__``) and
``modeling/interface/modules.py`` (``SelfAttentionLayer`` / ``CrossAttentionLayer`` / ``FFNLayer`` / ``MLP``),
independently of the ovseg module; backbone / pixel decoder / language tables come from tests/helpers/seem_keys.py.
"""
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope

import projects.seem_ft.seem_ft  # noqa: F401
from ovseg.registry import MODELS
from tests.helpers.seem_keys import official_focal_shapes, official_lang_encoder_shapes, official_pixel_decoder_shapes

TINY_CONFIG = 'configs/seem_ft/_base_/seem_tiny_model.py'
CLASSES = ['cat', 'dog', 'sky']
IS_THING = [True, True, False]


def tiny_cfg():
    return Config.fromfile(TINY_CONFIG)


def build_tiny(criterion=True, seed=0, **overrides):
    init_default_scope('ovseg')
    torch.manual_seed(seed)
    cfg = dict(tiny_cfg().model)
    if isinstance(criterion, dict):  # a criterion config replaces the tiny one
        cfg['criterion'] = criterion
    elif not criterion:
        cfg['criterion'] = None
    cfg.update(overrides)
    return MODELS.build(cfg)


def official_decoder_shapes(hidden, dim_proj, num_queries, ffn, layers, mask_dim, memories, levels=3):
    """Name → shape of SEEM's ``sem_seg_head.predictor`` without ``lang_encoder`` (prefix removed), for
    ``in_channels == hidden_dim`` (no ``input_proj`` weights), SPATIAL enabled, DETECTION off (no bbox_embed)."""
    h = hidden
    shapes = {}
    for i in range(layers):
        for mod, attn in (('transformer_self_attention_layers', 'self_attn'),
                          ('transformer_cross_attention_layers', 'multihead_attn')):
            p = f'{mod}.{i}.'
            shapes.update({p + f'{attn}.in_proj_weight': (3 * h, h), p + f'{attn}.in_proj_bias': (3 * h,),
                           p + f'{attn}.out_proj.weight': (h, h), p + f'{attn}.out_proj.bias': (h,),
                           p + 'norm.weight': (h,), p + 'norm.bias': (h,)})
        p = f'transformer_ffn_layers.{i}.'
        shapes.update({p + 'linear1.weight': (ffn, h), p + 'linear1.bias': (ffn,), p + 'linear2.weight': (h, ffn),
                       p + 'linear2.bias': (h,), p + 'norm.weight': (h,), p + 'norm.bias': (h,)})
    shapes.update({'decoder_norm.weight': (h,), 'decoder_norm.bias': (h,), 'query_feat.weight': (num_queries, h),
                   'query_embed.weight': (num_queries, h), 'level_embed.weight': (levels, h),
                   'mask_embed.layers.0.weight': (h, h), 'mask_embed.layers.0.bias': (h,),
                   'mask_embed.layers.1.weight': (h, h), 'mask_embed.layers.1.bias': (h,),
                   'mask_embed.layers.2.weight': (mask_dim, h), 'mask_embed.layers.2.bias': (mask_dim,),
                   'class_embed': (h, dim_proj), 'spatial_embed.weight': (memories, h),
                   'spatial_featured.weight': (memories, h), 'pn_indicator.weight': (2, h)})
    for i in range(levels):
        shapes[f'mask_sptial_embed.{i}'] = (h, h)
    return shapes


def fake_official_checkpoint(num_classes=133, seed=0):
    """A SEEM v1 state dict with the official names at the tiny config's sizes (random values)."""
    g = torch.Generator().manual_seed(seed)
    cfg = tiny_cfg().model
    bb, pd, dec, te = cfg.backbone, cfg.pixel_decoder, cfg.transformer_decoder, cfg.text_encoder
    sd = {}
    chans = [bb.embed_dim * 2 ** i for i in range(4)]
    for k, s in official_focal_shapes('focal_dw', bb.embed_dim, bb.depths, (3, 3, 3, 3)).items():
        sd['backbone.' + k] = torch.randn(s, generator=g)
    for k, s in official_pixel_decoder_shapes(chans, conv_dim=pd.conv_dim, mask_dim=pd.mask_dim,
                                              enc_layers=pd.transformer_enc_layers,
                                              ffn=pd.transformer_dim_feedforward).items():
        sd['sem_seg_head.pixel_decoder.' + k] = torch.randn(s, generator=g)
    for k, s in official_decoder_shapes(dec.hidden_dim, te.dim_proj, dec.num_queries, dec.dim_feedforward,
                                        dec.dec_layers, pd.mask_dim, dec.num_spatial_memories).items():
        sd['sem_seg_head.predictor.' + k] = torch.randn(s, generator=g)
    for k, s in official_lang_encoder_shapes(width=te.width, layers=te.layers, dim_proj=te.dim_proj).items():
        sd['sem_seg_head.predictor.lang_encoder.' + k] = torch.randn(s, generator=g) * 0.02
    sd['criterion.empty_weight'] = torch.ones(num_classes + 1)
    sd['dilation_kernel'] = torch.ones(1, 1, 3, 3)
    return sd
