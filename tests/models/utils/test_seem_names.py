"""seem_backbone_pixel_lang_keys: official SEEM names (tables written from the reference code) → ovseg keys that
load strictly into FocalNet, TransformerEncoderPixelDecoder and SEEMLanguageEncoder; the rest is unmatched."""
import pytest
import torch

from ovseg.models.backbones import FocalNet
from ovseg.models.pixel_decoders import TransformerEncoderPixelDecoder
from ovseg.models.text_encoders import SEEMLanguageEncoder
from ovseg.models.utils import seem_backbone_pixel_lang_keys
from tests.helpers.seem_keys import official_focal_shapes, official_lang_encoder_shapes, official_pixel_decoder_shapes

CHANS = (16, 32, 64, 128)
DECODER_KEYS = ['sem_seg_head.predictor.query_feat.weight', 'sem_seg_head.predictor.class_embed',
                'sem_seg_head.predictor.transformer_self_attention_layers.0.norm.weight',
                'sem_seg_head.predictor.mask_embed.layers.0.weight', 'criterion.empty_weight']


def _fake_official(variant='focal_dw', levels=(3, 3, 3, 3)):
    sd = {}
    for k, s in official_focal_shapes(variant, 16, (1, 1, 2, 1), levels).items():
        sd['backbone.' + k] = torch.randn(s)
    for k, s in official_pixel_decoder_shapes(CHANS, conv_dim=32, mask_dim=24, enc_layers=2, ffn=64).items():
        sd['sem_seg_head.pixel_decoder.' + k] = torch.randn(s)
    for k, s in official_lang_encoder_shapes(width=16, layers=2, dim_proj=8).items():
        sd['sem_seg_head.predictor.lang_encoder.' + k] = torch.randn(s)
    for k in DECODER_KEYS:
        sd[k] = torch.randn(3)
    return sd


def _part(mapped, prefix):
    return {k[len(prefix):]: v for k, v in mapped.items() if k.startswith(prefix)}


@pytest.mark.parametrize('preset,variant,levels', [('focalt', 'focal_dw', (3,) * 4), ('focall', 'focal', (4,) * 4)])
def test_mapped_keys_load_strictly_into_ovseg_modules(preset, variant, levels):
    official = _fake_official(variant, levels)
    mapped, unmatched = seem_backbone_pixel_lang_keys(official)
    assert unmatched == DECODER_KEYS
    assert len(mapped) == len(official) - len(DECODER_KEYS)
    assert set(mapped) == {k for k in mapped if k.split('.')[0] in ('backbone', 'pixel_decoder', 'text_encoder')}
    backbone = FocalNet(preset, embed_dim=16, depths=(1, 1, 2, 1))
    pixel = TransformerEncoderPixelDecoder(in_channels=list(CHANS), conv_dim=32, mask_dim=24,
                                           transformer_enc_layers=2, transformer_nheads=4,
                                           transformer_dim_feedforward=64)
    lang = SEEMLanguageEncoder(width=16, layers=2, heads=2, dim_proj=8)
    for module, prefix in ((backbone, 'backbone.'), (pixel, 'pixel_decoder.'), (lang, 'text_encoder.')):
        module.load_state_dict(_part(mapped, prefix), strict=True)
    # values travel untouched
    key = 'sem_seg_head.predictor.lang_encoder.lang_encoder.resblocks.1.mlp.c_fc.weight'
    assert mapped['text_encoder.lang_encoder.transformer.resblocks.1.mlp.c_fc.weight'] is official[key]
    assert torch.equal(lang.lang_encoder.transformer.resblocks[1].mlp.c_fc.weight, official[key])
    assert torch.equal(pixel.layer_4.norm.weight, official['sem_seg_head.pixel_decoder.layer_4.norm.weight'])


def test_rename_table_examples_and_custom_prefixes():
    sd = {'backbone.layers.0.blocks.0.dw1.weight': 1, 'sem_seg_head.pixel_decoder.adapter_1.norm.weight': 2,
          'sem_seg_head.predictor.lang_encoder.lang_encoder.resblocks.0.ln_1.weight': 3,
          'sem_seg_head.predictor.lang_encoder.lang_encoder.token_embedding.weight': 4,
          'sem_seg_head.predictor.lang_encoder.lang_proj': 5, 'sem_seg_head.predictor.lang_encoder.logit_scale': 6,
          'sem_seg_head.predictor.query_embed.weight': 7}
    mapped, unmatched = seem_backbone_pixel_lang_keys(sd)
    assert dict(mapped) == {'backbone.layers.0.blocks.0.dw1.weight': 1, 'pixel_decoder.adapter_1.norm.weight': 2,
                            'text_encoder.lang_encoder.transformer.resblocks.0.ln_1.weight': 3,
                            'text_encoder.lang_encoder.token_embedding.weight': 4, 'text_encoder.lang_proj': 5,
                            'text_encoder.logit_scale': 6}
    assert unmatched == ['sem_seg_head.predictor.query_embed.weight']
    custom, _ = seem_backbone_pixel_lang_keys(sd, backbone_prefix='model.backbone.', pixel_decoder_prefix='pd.',
                                              text_encoder_prefix='lang.')
    assert 'model.backbone.layers.0.blocks.0.dw1.weight' in custom and 'pd.adapter_1.norm.weight' in custom
    assert 'lang.lang_encoder.transformer.resblocks.0.ln_1.weight' in custom
    assert len(sd) == 7  # input untouched


def test_colliding_targets_raise():
    sd = {'backbone.x': 1, 'sem_seg_head.pixel_decoder.x': 2}
    with pytest.raises(ValueError, match='map to'):
        seem_backbone_pixel_lang_keys(sd, pixel_decoder_prefix='backbone.')
