"""TransformerEncoderPixelDecoder (SEEM ``transformer_encoder_fpn``): official keys, shapes, encoder-layer parity,
FPN wiring, and that the masked-attention decoder takes its output."""
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from ovseg.models.decoders import MaskedAttentionDecoder
from ovseg.models.pixel_decoders import MSDeformAttnPixelDecoder, TransformerEncoderPixelDecoder
from ovseg.models.pixel_decoders.transformer_encoder_pixel_decoder import TransformerEncoderLayer
from ovseg.registry import MODELS
from tests.helpers.seem_keys import official_pixel_decoder_shapes

TINY = dict(conv_dim=32, mask_dim=24, transformer_enc_layers=2, transformer_nheads=4,
            transformer_dim_feedforward=64)


def _shape(chans):
    return {f'res{i + 2}': dict(channels=c, stride=4 * 2 ** i) for i, c in enumerate(chans)}


def _feats(chans, size=64, batch=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    return {f'res{i + 2}': torch.randn(batch, c, size // 4 // 2 ** i, size // 4 // 2 ** i, generator=g)
            for i, c in enumerate(chans)}


@pytest.mark.parametrize('chans', [(192, 384, 768, 1536), (96, 192, 384, 768)])  # Focal-L, Focal-T
def test_state_dict_matches_official_names(chans):
    with torch.device('meta'):
        dec = TransformerEncoderPixelDecoder(_shape(chans))  # SEEM defaults: 512 / 512 / GN / 6 layers / 2048
    assert {k: tuple(v.shape) for k, v in dec.state_dict().items()} == official_pixel_decoder_shapes(chans)


def test_pre_norm_adds_final_encoder_norm():
    dec = TransformerEncoderPixelDecoder(_shape((16, 32, 64, 128)), transformer_pre_norm=True, **TINY)
    assert dec.transformer.encoder.norm is not None
    assert 'transformer.encoder.norm.weight' in dec.state_dict()


def test_output_shapes_order_and_backward():
    dec = MODELS.build(dict(type='TransformerEncoderPixelDecoder', in_channels=[16, 32, 64, 128], **TINY))
    mask_features, multi_scale = dec(_feats((16, 32, 64, 128)))
    assert mask_features.shape == (2, 24, 16, 16)
    # coarsest first: stride 32, 16, 8 — the same order as MSDeformAttnPixelDecoder returns
    assert [tuple(x.shape) for x in multi_scale] == [(2, 32, 2, 2), (2, 32, 4, 4), (2, 32, 8, 8)]
    (mask_features.sum() + sum(x.sum() for x in multi_scale)).backward()
    assert all(p.grad is not None for p in dec.parameters())


def test_same_return_signature_as_msdeformattn_decoder():
    feats = _feats((16, 32, 64, 128))
    ours = TransformerEncoderPixelDecoder(_shape((16, 32, 64, 128)), **TINY)
    deform = MSDeformAttnPixelDecoder(_shape((16, 32, 64, 128)), **TINY)
    (m1, s1), (m2, s2) = ours(feats), deform(feats)
    assert m1.shape == m2.shape and [x.shape for x in s1] == [x.shape for x in s2]
    assert (ours.conv_dim, ours.mask_dim) == (deform.conv_dim, deform.mask_dim)


def test_masked_attention_decoder_takes_the_output():
    torch.manual_seed(0)
    dec = TransformerEncoderPixelDecoder(_shape((16, 32, 64, 128)), **TINY).eval()
    head = MaskedAttentionDecoder(in_channels=32, hidden_dim=32, num_queries=5, nheads=4, dim_feedforward=64,
                                  dec_layers=3, mask_dim=24).eval()
    with torch.no_grad():
        mask_features, multi_scale = dec(_feats((16, 32, 64, 128)))
        out = head(multi_scale, mask_features)
    assert out['pred_masks'].shape == (2, 5, 16, 16)


def test_fpn_wiring_by_hand():
    """top-down: layer_4(encoder(input_proj(res5))), then nearest-upsampled sums with adapter_3..1."""
    torch.manual_seed(0)
    dec = TransformerEncoderPixelDecoder(_shape((16, 32, 64, 128)), **TINY).eval()
    f = _feats((16, 32, 64, 128), size=96, batch=1)
    with torch.no_grad():
        mask_features, multi_scale = dec(f)
        y = dec.layer_4(dec.transformer(dec.input_proj(f['res5']), dec.pe_layer(f['res5'])))
        maps = [y]
        for i, name in ((3, 'res4'), (2, 'res3'), (1, 'res2')):
            lat = getattr(dec, f'adapter_{i}')(f[name])
            y = getattr(dec, f'layer_{i}')(lat + F.interpolate(y, size=lat.shape[-2:], mode='nearest'))
            maps.append(y)
        for got, exp in zip(multi_scale, maps[:3]):
            torch.testing.assert_close(got, exp)
        torch.testing.assert_close(mask_features, dec.mask_features(maps[-1]))


def test_encoder_layer_matches_torch_post_norm_layer():
    torch.manual_seed(0)
    ours = TransformerEncoderLayer(32, 4, dim_feedforward=64, dropout=0.0).eval()
    ref = nn.TransformerEncoderLayer(32, 4, dim_feedforward=64, dropout=0.0, activation='relu',
                                     norm_first=False).eval()
    with torch.no_grad():  # perturb everything (LayerNorms included) before copying
        for p in ours.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    result = ref.load_state_dict(ours.state_dict(), strict=True)  # same names as torch's layer
    assert not result.missing_keys and not result.unexpected_keys
    src = torch.randn(10, 2, 32)  # L × B × C
    with torch.no_grad():
        torch.testing.assert_close(ours(src), ref(src), atol=1e-5, rtol=0)
        # positions go to queries and keys only (DETR): same as torch's attention with q = k = src + pos, v = src
        pos = torch.randn(10, 2, 32)
        attn = ours.self_attn(src + pos, src + pos, src, need_weights=False)[0]
        x = ours.norm1(src + attn)
        expected = ours.norm2(x + ours.linear2(F.relu(ours.linear1(x))))
        torch.testing.assert_close(ours(src, pos), expected, atol=1e-5, rtol=0)


def test_argument_checks():
    with pytest.raises(ValueError, match='norm'):
        TransformerEncoderPixelDecoder(_shape((16, 32, 64, 128)), norm='BN', **TINY)
    with pytest.raises(ValueError, match='exactly one'):
        TransformerEncoderPixelDecoder(**TINY)
    no_norm = TransformerEncoderPixelDecoder(_shape((16, 32, 64, 128)), norm='', **TINY)
    assert no_norm.adapter_1.bias is not None and no_norm.adapter_1.norm is None
