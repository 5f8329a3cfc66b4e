"""Numerical parity of the pure-PyTorch deformable attention and the whole pixel decoder with transformers.

transformers ships independent PyTorch ports of the same ops (Deformable-DETR's ``MultiScaleDeformableAttention``
kernel fallback and Mask2Former's pixel decoder). Copying our weights into theirs and feeding identical inputs
must give the same outputs up to float rounding; this pins the sampling convention (normalised (x, y),
``align_corners=False``, zero padding), the offset normaliser (W, H), the reference points, the level order
(res5 first), the sine positional encoding and the FPN wiring.
"""
import pytest
import torch
from transformers import Mask2FormerConfig
from transformers.models.deformable_detr.modeling_deformable_detr import MultiScaleDeformableAttention
from transformers.models.mask2former.modeling_mask2former import (
    Mask2FormerPixelDecoder,
    Mask2FormerPixelDecoderEncoderMultiscaleDeformableAttention,
)
from transformers.models.mask2former.modeling_mask2former import multi_scale_deformable_attention as m2f_msda

from ovseg.models.layers import MSDeformAttn, multi_scale_deformable_attn
from ovseg.models.pixel_decoders import MSDeformAttnPixelDecoder
from ovseg.registry import MODELS

SHAPES = [(12, 10), (6, 5), (3, 3)]


def _random_op_inputs(n=2, heads=4, d=8, lq=17, pts=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    value = torch.randn(n, sum(h * w for h, w in SHAPES), heads, d, generator=g)
    # locations partly outside [0, 1] exercise the zero padding at the borders
    loc = torch.rand(n, lq, heads, len(SHAPES), pts, 2, generator=g) * 1.2 - 0.1
    attn = torch.rand(n, lq, heads, len(SHAPES), pts, generator=g)
    return value, loc, attn / attn.sum((-1, -2), keepdim=True)


def test_core_op_matches_deformable_detr_and_mask2former_ports():
    value, loc, attn = _random_op_inputs()
    ours = multi_scale_deformable_attn(value, SHAPES, loc, attn)
    assert ours.shape == (2, 17, 4 * 8)
    # Deformable-DETR's kernel wrapper also wants the level start indices and the im2col step
    shapes_t = torch.tensor(SHAPES)
    start = torch.cat([shapes_t.new_zeros(1), shapes_t.prod(1).cumsum(0)[:-1]])
    ref_ddetr = MultiScaleDeformableAttention()(value, shapes_t, SHAPES, start, loc, attn, im2col_step=64)
    torch.testing.assert_close(ours, ref_ddetr, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(ours, m2f_msda(value, SHAPES, loc, attn), atol=1e-5, rtol=1e-5)


def test_core_op_gradients_match():
    value, loc, attn = _random_op_inputs(seed=1)
    grads = []
    for fn in (multi_scale_deformable_attn, m2f_msda):
        v, lc, a = (t.clone().requires_grad_(True) for t in (value, loc, attn))
        (fn(v, SHAPES, lc, a) ** 2).sum().backward()
        grads.append((v.grad, lc.grad, a.grad))
    for ours, ref in zip(*grads):
        torch.testing.assert_close(ours, ref, atol=1e-4, rtol=1e-4)


def _perturb(module: torch.nn.Module, seed: int = 0) -> None:
    """Move every parameter off its (often zero / one) init so a wrong wiring cannot hide."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(0.1 * torch.randn(p.shape, generator=g))


@pytest.mark.parametrize('use_padding_mask', [False, True])
def test_module_matches_transformers_with_copied_weights(use_padding_mask):
    torch.manual_seed(0)
    d_model, heads = 32, 4
    ours = MSDeformAttn(d_model=d_model, n_levels=3, n_heads=heads, n_points=4)
    _perturb(ours)
    ref = Mask2FormerPixelDecoderEncoderMultiscaleDeformableAttention(d_model, heads, n_levels=3, n_points=4)
    ref.load_state_dict(ours.state_dict())  # identical parameter names
    s = sum(h * w for h, w in SHAPES)
    src, pos = torch.randn(2, s, d_model), torch.randn(2, s, d_model)
    refp = torch.rand(2, s, 3, 2)
    pad = (torch.rand(2, s) < 0.2) if use_padding_mask else None
    out = ours(src + pos, refp, src, SHAPES, pad)
    expected, _ = ref(hidden_states=src, attention_mask=pad, encoder_hidden_states=src, position_embeddings=pos,
                      reference_points=refp, spatial_shapes_list=SHAPES)
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)


def test_module_init_is_deformable_detr():
    m = MSDeformAttn(d_model=256, n_levels=3, n_heads=8, n_points=4)
    assert [name for name, _ in m.named_children()] == [
        'sampling_offsets', 'attention_weights', 'value_proj', 'output_proj']
    assert m.sampling_offsets.weight.abs().sum() == 0 and m.attention_weights.weight.abs().sum() == 0
    assert m.attention_weights.bias.abs().sum() == 0  # uniform attention at init
    bias = m.sampling_offsets.bias.view(8, 3, 4, 2)
    # head h points along angle 2πh/8, scaled so the larger coordinate is ±1, times the point index 1..4
    assert torch.allclose(bias[0, 0], torch.tensor([[1.0, 0.0], [2.0, 0.0], [3.0, 0.0], [4.0, 0.0]]))
    assert torch.allclose(bias[2, 1, :, 1], torch.tensor([1.0, 2.0, 3.0, 4.0]), atol=1e-6)
    assert torch.allclose(bias[:, :, 3].abs().amax(-1), torch.full((8, 3), 4.0))
    assert torch.allclose(bias[:, 0], bias[:, 2])  # the same ring on every level


# ---------------------------------------------------------------------------- whole pixel decoder
def _to_transformers_key(k: str) -> str:
    """Our (official FC-CLIP) pixel-decoder key → transformers' Mask2FormerPixelDecoder key."""
    k = k.replace('input_proj.', 'input_projections.').replace('transformer.level_embed', 'level_embed')
    k = k.replace('transformer.encoder.', 'encoder.').replace('mask_features.', 'mask_projection.')
    for ours, theirs in (('norm1', 'self_attn_layer_norm'), ('norm2', 'final_layer_norm'),
                         ('linear1', 'fc1'), ('linear2', 'fc2')):
        k = k.replace(f'.{ours}.', f'.{theirs}.')
    for conv in ('adapter_1', 'layer_1'):
        k = k.replace(f'{conv}.weight', f'{conv}.0.weight').replace(f'{conv}.norm.', f'{conv}.1.')
    return k


def test_pixel_decoder_matches_transformers_mask2former_pixel_decoder():
    torch.manual_seed(0)
    chans = [16, 32, 64, 128]
    ours = MSDeformAttnPixelDecoder(in_channels=chans, conv_dim=32, mask_dim=32, transformer_enc_layers=2,
                                    transformer_nheads=4, transformer_dim_feedforward=64)
    _perturb(ours)
    cfg = Mask2FormerConfig(feature_size=32, mask_feature_size=32, encoder_layers=2, num_attention_heads=4,
                            encoder_feedforward_dim=64, dropout=0.0, feature_strides=[4, 8, 16, 32], common_stride=4)
    ref = Mask2FormerPixelDecoder(cfg, feature_channels=chans).eval()
    ref.load_state_dict({_to_transformers_key(k): v for k, v in ours.state_dict().items()}, strict=True)
    # a non-square 64×96 image: res2 is 16×24, res5 2×3
    feats = {f'res{i + 2}': torch.randn(2, c, 16 // 2 ** i, 24 // 2 ** i) for i, c in enumerate(chans)}
    mask_features, multi_scale = ours(feats)
    expected = ref([feats[f'res{i}'] for i in range(2, 6)])
    assert mask_features.shape == (2, 32, 16, 24)
    assert [tuple(x.shape) for x in multi_scale] == [(2, 32, 2, 3), (2, 32, 4, 6), (2, 32, 8, 12)]
    torch.testing.assert_close(mask_features, expected.mask_features, atol=1e-4, rtol=1e-4)
    for a, b in zip(multi_scale, expected.multi_scale_features):
        torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)


def test_build_from_config_with_in_channels_forms():
    """``in_channels`` as a list or a dict and the backbone's ``input_shape`` build the same module."""
    common = dict(type='MSDeformAttnPixelDecoder', conv_dim=32, mask_dim=32, transformer_enc_layers=1,
                  transformer_nheads=4, transformer_dim_feedforward=32)
    chans = (8, 16, 24, 40)
    a = MODELS.build(dict(common, in_channels=list(chans)))
    b = MODELS.build(dict(common, in_channels={f'res{i + 2}': c for i, c in enumerate(chans)}))
    c = MODELS.build(dict(common, input_shape={f'res{i + 2}': dict(channels=ch, stride=4 * 2 ** i)
                                               for i, ch in enumerate(chans)}))
    shapes = [{k: tuple(v.shape) for k, v in m.state_dict().items()} for m in (a, b, c)]
    assert shapes[0] == shapes[1] == shapes[2]
    assert a.input_proj[0][0].in_channels == 40 and a.adapter_1.in_channels == 8  # res5 first; FPN on res2
    with pytest.raises(ValueError, match='exactly one'):
        MSDeformAttnPixelDecoder(in_channels=chans, input_shape={'res2': dict(channels=8, stride=4)})
    with pytest.raises(ValueError, match='strides'):
        MSDeformAttnPixelDecoder(in_channels=chans, strides=(8, 16, 32))
