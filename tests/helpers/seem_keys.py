"""SEEM v1 official state-dict names and shapes, written from the reference code (SEEM v1.0, branch ``v1.0``):
``modeling/vision/backbone/focal.py`` / ``focal_dw.py``, ``modeling/vision/encoder/transformer_encoder_fpn.py`` +
``transformer_blocks.py``, ``modeling/language/LangEncoder/transformer.py`` + ``vlpencoder.py``. Independent of the
ovseg modules, so the tests compare against these tables."""


def official_focal_shapes(variant, embed_dim, depths, focal_levels, focal_windows=3, mlp_ratio=4):
    """Name → shape of SEEM's FocalNet state dict, written from the reference code (``focal.py`` /
    ``focal_dw.py``, v1.0) with the SEEM yaml flags (conv embed, layerscale, post-LN, no LN in modulation)."""
    shapes = {'patch_embed.proj.weight': (embed_dim, 3, 7, 7), 'patch_embed.proj.bias': (embed_dim,),
              'patch_embed.norm.weight': (embed_dim,), 'patch_embed.norm.bias': (embed_dim,)}
    for i, depth in enumerate(depths):
        c, lv = embed_dim * 2 ** i, focal_levels[i]
        for j in range(depth):
            p = f'layers.{i}.blocks.{j}.'
            shapes.update({p + 'gamma_1': (c,), p + 'gamma_2': (c,), p + 'norm1.weight': (c,), p + 'norm1.bias': (c,),
                           p + 'modulation.f.weight': (2 * c + lv + 1, c), p + 'modulation.f.bias': (2 * c + lv + 1,),
                           p + 'modulation.h.weight': (c, c, 1, 1), p + 'modulation.h.bias': (c,),
                           p + 'modulation.proj.weight': (c, c), p + 'modulation.proj.bias': (c,),
                           p + 'norm2.weight': (c,), p + 'norm2.bias': (c,),
                           p + 'mlp.fc1.weight': (mlp_ratio * c, c), p + 'mlp.fc1.bias': (mlp_ratio * c,),
                           p + 'mlp.fc2.weight': (c, mlp_ratio * c), p + 'mlp.fc2.bias': (c,)})
            for k in range(lv):
                ks = focal_windows + 2 * k
                shapes[p + f'modulation.focal_layers.{k}.0.weight'] = (c, 1, ks, ks)
            if variant == 'focal_dw':  # plain depthwise nn.Conv2d with bias (not a Sequential)
                for name in ('dw1', 'dw2'):
                    shapes[p + f'{name}.weight'] = (c, 1, 3, 3)
                    shapes[p + f'{name}.bias'] = (c,)
        if i < len(depths) - 1:
            shapes.update({f'layers.{i}.downsample.proj.weight': (2 * c, c, 3, 3),
                           f'layers.{i}.downsample.proj.bias': (2 * c,),
                           f'layers.{i}.downsample.norm.weight': (2 * c,),
                           f'layers.{i}.downsample.norm.bias': (2 * c,)})
        shapes[f'norm{i}.weight'] = (c,)
        shapes[f'norm{i}.bias'] = (c,)
    return shapes


def official_pixel_decoder_shapes(chans, conv_dim=512, mask_dim=512, enc_layers=6, ffn=2048):
    """Name → shape of SEEM's ``sem_seg_head.pixel_decoder`` (prefix removed), written from
    ``modeling/vision/encoder/transformer_encoder_fpn.py`` + ``transformer_blocks.py`` (SEEM v1.0) with NORM 'GN'
    (FPN convs without bias) and PRE_NORM False (no ``transformer.encoder.norm``)."""
    d = conv_dim
    shapes = {}
    for i, c in enumerate(chans[:-1]):
        shapes.update({f'adapter_{i + 1}.weight': (d, c, 1, 1), f'adapter_{i + 1}.norm.weight': (d,),
                       f'adapter_{i + 1}.norm.bias': (d,), f'layer_{i + 1}.weight': (d, d, 3, 3),
                       f'layer_{i + 1}.norm.weight': (d,), f'layer_{i + 1}.norm.bias': (d,)})
    n = len(chans)
    shapes.update({f'layer_{n}.weight': (d, d, 3, 3), f'layer_{n}.norm.weight': (d,), f'layer_{n}.norm.bias': (d,),
                   'mask_features.weight': (mask_dim, d, 3, 3), 'mask_features.bias': (mask_dim,),
                   'input_proj.weight': (d, chans[-1], 1, 1), 'input_proj.bias': (d,)})
    for i in range(enc_layers):
        p = f'transformer.encoder.layers.{i}.'
        shapes.update({p + 'self_attn.in_proj_weight': (3 * d, d), p + 'self_attn.in_proj_bias': (3 * d,),
                       p + 'self_attn.out_proj.weight': (d, d), p + 'self_attn.out_proj.bias': (d,),
                       p + 'linear1.weight': (ffn, d), p + 'linear1.bias': (ffn,),
                       p + 'linear2.weight': (d, ffn), p + 'linear2.bias': (d,),
                       p + 'norm1.weight': (d,), p + 'norm1.bias': (d,),
                       p + 'norm2.weight': (d,), p + 'norm2.bias': (d,)})
    return shapes


def official_lang_encoder_shapes(width=512, layers=12, context_length=77, vocab_size=49408, dim_proj=512):
    """Name → shape of SEEM's ``sem_seg_head.predictor.lang_encoder`` (prefix removed): ``LanguageEncoder`` holds
    ``lang_encoder`` (``Transformer``: token/positional embeddings, ``resblocks`` of ``ResidualAttentionBlock`` with
    ``attn`` (nn.MultiheadAttention), ``ln_1``, ``mlp.{c_fc,c_proj}``, ``ln_2``; ``ln_final``), ``lang_proj`` and
    ``logit_scale``. The causal ``attn_mask`` is a plain attribute, not in the state dict."""
    w = width
    shapes = {'lang_encoder.token_embedding.weight': (vocab_size, w),
              'lang_encoder.positional_embedding': (context_length, w)}
    for i in range(layers):
        p = f'lang_encoder.resblocks.{i}.'
        shapes.update({p + 'attn.in_proj_weight': (3 * w, w), p + 'attn.in_proj_bias': (3 * w,),
                       p + 'attn.out_proj.weight': (w, w), p + 'attn.out_proj.bias': (w,),
                       p + 'ln_1.weight': (w,), p + 'ln_1.bias': (w,),
                       p + 'mlp.c_fc.weight': (4 * w, w), p + 'mlp.c_fc.bias': (4 * w,),
                       p + 'mlp.c_proj.weight': (w, 4 * w), p + 'mlp.c_proj.bias': (w,),
                       p + 'ln_2.weight': (w,), p + 'ln_2.bias': (w,)})
    shapes.update({'lang_encoder.ln_final.weight': (w,), 'lang_encoder.ln_final.bias': (w,),
                   'lang_proj': (w, dim_proj), 'logit_scale': ()})
    return shapes
