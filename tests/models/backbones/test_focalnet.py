"""FocalNet (SEEM ``focal`` / ``focal_dw``): timm parity, official key names, post-LN placement, shapes, sizes.

* ``focal`` is checked numerically against timm's ``focalnet_large_fl4`` built with SEEM's Focal-L flags at tiny
  width, with timm weights converted from our state dict by timm's own ``checkpoint_filter_fn`` (the original
  Microsoft names, which SEEM keeps).
* ``focal_dw`` has no timm counterpart: its key names and shapes are compared with a table written from SEEM v1.0
  ``modeling/vision/backbone/focal_dw.py`` (= mmdet ``projects/XDecoder/xdecoder/focalnet.py``), and the
  post-LN-after-residual block is checked by a hand computation.
"""
import pytest
import torch
import torch.nn.functional as F
from timm.models.focalnet import _create_focalnet, checkpoint_filter_fn

from ovseg.models.backbones import FOCALNET_PRESETS, FocalNet
from ovseg.models.backbones.focalnet import FocalModulationBlock
from ovseg.registry import MODELS
from tests.helpers.seem_keys import official_focal_shapes

TINY = dict(embed_dim=16, depths=(1, 1, 2, 1), drop_path_rate=0.0)


def _randomize(module, seed=0):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.2)
    return module


# ---------------------------------------------------------------- (a) focal vs timm
def test_focal_matches_timm_focalnet_large_fl4():
    ours = _randomize(FocalNet('focall', **TINY)).eval()
    timm_model = _create_focalnet('focalnet_large_fl4', embed_dim=16, depths=[1, 1, 2, 1], focal_levels=[4] * 4,
                                  use_post_norm=True, use_overlap_down=True, layerscale_value=1e-4,
                                  normalize_modulator=True, num_classes=0).eval()
    sd = {k: v for k, v in ours.state_dict().items() if not k.startswith('norm')}  # norm0..3: SEEM's output norms
    result = timm_model.load_state_dict(checkpoint_filter_fn(sd, timm_model), strict=False)
    assert result.unexpected_keys == []
    assert sorted(result.missing_keys) == ['norm.bias', 'norm.weight']  # timm's classifier-head norm only
    x = torch.randn(2, 3, 64, 96)
    with torch.no_grad():
        out = ours(x)
        y = timm_model.stem(x)
        for i, stage in enumerate(timm_model.layers):
            y = stage(y)
            ref = getattr(ours, f'norm{i}')(y.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
            assert out[f'res{i + 2}'].shape == ref.shape
            torch.testing.assert_close(out[f'res{i + 2}'], ref, atol=1e-5, rtol=0)


# ---------------------------------------------------------------- (b) focal_dw: official names and post-LN
@pytest.mark.parametrize('preset,tiny', [('focalt', True), ('focalt', False), ('focall', True), ('focall', False)])
def test_state_dict_matches_official_names_and_shapes(preset, tiny):
    kw = TINY if tiny else {}
    if tiny:
        model = FocalNet(preset, **kw)
    else:
        with torch.device('meta'):
            model = FocalNet(preset)
    cfg = {**FOCALNET_PRESETS[preset], **kw}
    expected = official_focal_shapes(cfg['variant'], cfg['embed_dim'], cfg['depths'], cfg['focal_levels'])
    got = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert got == expected


def test_focal_dw_example_keys():
    sd = FocalNet('focalt', **TINY).state_dict()
    assert sd['layers.0.blocks.0.dw1.weight'].shape == (16, 1, 3, 3)
    assert sd['layers.0.blocks.0.dw2.bias'].shape == (16,)
    assert sd['layers.2.blocks.1.modulation.focal_layers.2.0.weight'].shape == (64, 1, 7, 7)
    assert sd['patch_embed.proj.weight'].shape == (16, 3, 7, 7)
    assert FocalNet('focalt', **TINY).patch_embed.proj.padding == (3, 3)  # focal_dw.py stem
    assert FocalNet('focall', **TINY).patch_embed.proj.padding == (2, 2)  # focal.py stem
    assert not any('dw1' in k for k in FocalNet('focall', **TINY).state_dict())


def test_focal_dw_block_post_norm_after_residual_by_hand():
    dim = 8
    block = _randomize(FocalModulationBlock(dim, focal_level=3, focal_window=3, use_postln=True,
                                            scaling_modulator=True, use_layerscale=True, depthwise=True), 1).eval()
    x = torch.randn(2, 5, 6, dim)

    def dw(conv, t):  # channels-last depthwise 3x3 conv, by F.conv2d
        return F.conv2d(t.permute(0, 3, 1, 2), conv.weight, conv.bias, padding=1, groups=dim).permute(0, 2, 3, 1)

    def ln(norm, t):
        return F.layer_norm(t, (dim,), norm.weight, norm.bias, norm.eps)

    def mlp(t):
        return F.linear(F.gelu(F.linear(t, block.mlp.fc1.weight, block.mlp.fc1.bias)),
                        block.mlp.fc2.weight, block.mlp.fc2.bias)

    with torch.no_grad():
        x1 = x + dw(block.dw1, x)
        x2 = ln(block.norm1, x1 + block.gamma_1 * block.modulation(x1))  # norm1 AFTER the residual add
        x3 = x2 + dw(block.dw2, x2)
        expected = ln(block.norm2, x3 + block.gamma_2 * mlp(x3))         # norm2 AFTER the residual add
        got = block(x)
        torch.testing.assert_close(got, expected, atol=1e-5, rtol=0)
        # the branch-normalised (focal.py / timm) placement gives something else: the test discriminates
        branch = x1 + block.gamma_1 * ln(block.norm1, block.modulation(x1))
        branch = branch + dw(block.dw2, branch)
        branch = branch + block.gamma_2 * ln(block.norm2, mlp(branch))
        assert (got - branch).abs().max() > 1e-2


# ---------------------------------------------------------------- (c) outputs: strides and channels
@pytest.mark.parametrize('preset', ['focalt', 'focall'])
def test_outputs_strides_channels(preset):
    model = MODELS.build(dict(type='FocalNet', preset=preset, **TINY)).eval()
    assert model.variant == FOCALNET_PRESETS[preset]['variant']
    assert model.output_strides == {'res2': 4, 'res3': 8, 'res4': 16, 'res5': 32}
    assert model.output_channels == {'res2': 16, 'res3': 32, 'res4': 64, 'res5': 128}
    with torch.no_grad():
        out = model(torch.randn(1, 3, 64, 96))
        assert list(out) == ['res2', 'res3', 'res4', 'res5']
        for name, t in out.items():
            s = model.output_strides[name]
            assert t.shape == (1, model.output_channels[name], 64 // s, 96 // s)
        # SEEM's PatchEmbed pads to a multiple of 4 (stem) / 2 (downsampling): any size works, ceil(H / stride)
        odd = model(torch.randn(1, 3, 50, 37))
        assert [tuple(t.shape[-2:]) for t in odd.values()] == [(13, 10), (7, 5), (4, 3), (2, 2)]


def test_out_indices_subset_and_argument_checks():
    model = FocalNet('focalt', out_indices=(1, 2), **TINY).eval()
    assert not hasattr(model, 'norm0') and not hasattr(model, 'norm3')
    out = model(torch.randn(1, 3, 64, 64))
    assert list(out) == ['res3', 'res4'] and model.output_channels == {'res3': 32, 'res4': 64}
    with pytest.raises(ValueError, match='variant'):
        FocalNet(variant='swin')
    with pytest.raises(KeyError, match='preset'):
        FocalNet('focalx')
    with pytest.raises(ValueError, match='out_indices'):
        FocalNet(out_indices=(4,), **TINY)
    with pytest.raises(ValueError, match='focal_levels'):
        FocalNet(focal_levels=(3, 3), **TINY)


def test_gradient_checkpointing_same_outputs_and_grads():
    torch.manual_seed(0)
    plain = FocalNet('focalt', **TINY).train()
    ckpt = FocalNet('focalt', use_checkpoint=True, **TINY).train()
    ckpt.load_state_dict(plain.state_dict())
    x = torch.randn(1, 3, 32, 32)
    out_p, out_c = plain(x), ckpt(x)
    sum(t.sum() for t in out_p.values()).backward()
    sum(t.sum() for t in out_c.values()).backward()
    for k in out_p:
        torch.testing.assert_close(out_p[k], out_c[k])
    for (n, p), (_, q) in zip(plain.named_parameters(), ckpt.named_parameters()):
        torch.testing.assert_close(p.grad, q.grad, atol=1e-6, rtol=1e-5, msg=n)


def test_drop_path_schedule():
    model = FocalNet('focall', embed_dim=16, depths=(1, 1, 2, 1), drop_path_rate=0.3)
    rates = [getattr(b.drop_path, 'drop_prob', 0.0) for layer in model.layers for b in layer.blocks]
    assert rates == pytest.approx([0.0, 0.075, 0.15, 0.225, 0.3])  # linear over the 5 blocks, as SEEM


# ---------------------------------------------------------------- (d) full-size parameter counts
def test_full_size_parameter_counts():
    """Focal-L 205,746,936 and Focal-T 29,922,288 parameters (meta device, nothing allocated); cross-checked
    against timm's FocalNet with the same flags: minus timm's head norm, plus norm0..3, plus dw1/dw2."""
    with torch.device('meta'):
        large, tiny = FocalNet('focall'), FocalNet('focalt')
        kw = dict(use_post_norm=True, use_overlap_down=True, layerscale_value=1e-4, normalize_modulator=True,
                  num_classes=0)
        timm_l = _create_focalnet('focalnet_large_fl4', embed_dim=192, depths=(2, 2, 18, 2), focal_levels=(4,) * 4,
                                  **kw)
        timm_t = _create_focalnet('focalnet_large_fl4', embed_dim=96, depths=(2, 2, 6, 2), focal_levels=(3,) * 4,
                                  **kw)

    def count(m):
        return sum(p.numel() for p in m.parameters())

    assert count(large) == 205_746_936
    assert count(tiny) == 29_922_288
    chans_l, chans_t = (192, 384, 768, 1536), (96, 192, 384, 768)
    assert count(large) == count(timm_l) - 2 * 1536 + 2 * sum(chans_l)
    dw = sum(2 * (c * 9 + c) * d for c, d in zip(chans_t, (2, 2, 6, 2)))
    assert count(tiny) == count(timm_t) - 2 * 768 + 2 * sum(chans_t) + dw
