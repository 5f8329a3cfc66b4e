"""Pixel shuffle (hand-computed case, v1/v2), mlp1 layout, 448² tile → 256 tokens, and the whole
vision → LLM-token path against transformers' InternVLModel.get_image_features."""
import pytest
import torch

from projects.sa2va_sft.sa2va_sft.intern_vit import InternVisionConfig, InternVisionModel
from projects.sa2va_sft.sa2va_sft.projector import build_mlp1, extract_visual_tokens, num_image_tokens, pixel_shuffle
from projects.sa2va_sft.sa2va_sft.release_names import intern_vit_to_transformers

# 4x4 grid, one channel, value = 10 * row + col
GRID = (torch.arange(4)[:, None] * 10 + torch.arange(4)[None, :]).float().reshape(1, 4, 4, 1)


def test_pixel_shuffle_hand_computed_v2():
    """Cell (i, j) = the 2x2 block at rows 2i..2i+1, cols 2j..2j+1, row-major."""
    out = pixel_shuffle(GRID)
    assert out.shape == (1, 2, 2, 4)
    assert out[0].tolist() == [[[0, 1, 10, 11], [2, 3, 12, 13]],
                               [[20, 21, 30, 31], [22, 23, 32, 33]]]


def test_pixel_shuffle_v1_is_transposed_and_warns():
    with pytest.warns(UserWarning, match="'v1'"):
        out = pixel_shuffle(GRID, ps_version='v1')
    assert out[0].tolist() == [[[0, 1, 10, 11], [20, 21, 30, 31]],
                               [[2, 3, 12, 13], [22, 23, 32, 33]]]
    assert torch.equal(out, pixel_shuffle(GRID).transpose(1, 2))


def test_pixel_shuffle_channels_keep_their_order():
    x = torch.randn(2, 6, 6, 3)
    out = pixel_shuffle(x)
    assert out.shape == (2, 3, 3, 12)
    # cell (1, 2): block rows 2..3, cols 4..5; channels of each source cell stay contiguous
    expected = torch.cat([x[:, 2, 4], x[:, 2, 5], x[:, 3, 4], x[:, 3, 5]], dim=-1)
    assert torch.equal(out[:, 1, 2], expected)


def test_pixel_shuffle_matches_transformers():
    from transformers import InternVLModel
    x = torch.randn(3, 8, 8, 5)
    assert torch.equal(pixel_shuffle(x), InternVLModel.pixel_shuffle(None, x, 0.5))


@pytest.mark.parametrize('args,match', [
    (dict(x=torch.zeros(1, 3, 4, 2)), 'not divisible by 2'),
    (dict(x=torch.zeros(4, 4, 2)), r'\(N, W, H, C\)'),
    (dict(x=torch.zeros(1, 4, 4, 2), ps_version='v3'), 'ps_version'),
    (dict(x=torch.zeros(1, 4, 4, 2), scale_factor=0.3), '1/k'),
])
def test_pixel_shuffle_bad_input(args, match):
    with pytest.raises(ValueError, match=match):
        pixel_shuffle(**args)


def test_mlp1_layout_and_keys():
    mlp1 = build_mlp1(16, 24, downsample_ratio=0.5)
    assert [type(m).__name__ for m in mlp1] == ['LayerNorm', 'Linear', 'GELU', 'Linear']
    assert {k: tuple(v.shape) for k, v in mlp1.state_dict().items()} == {
        '0.weight': (64,), '0.bias': (64,), '1.weight': (24, 64), '1.bias': (24,),
        '3.weight': (24, 24), '3.bias': (24,)}
    assert mlp1[0].eps == 1e-5 and mlp1[2].approximate == 'none'


def test_448_tile_gives_256_tokens():
    assert num_image_tokens(448, 14, 0.5) == 256
    vit = InternVisionModel(InternVisionConfig(hidden_size=8, num_attention_heads=2, intermediate_size=16,
                                               num_hidden_layers=1, image_size=448, patch_size=14)).eval()
    mlp1 = build_mlp1(8, 12)
    with torch.no_grad():
        tokens = extract_visual_tokens(vit, mlp1, torch.randn(2, 3, 448, 448))
    assert tokens.shape == (2, 256, 12)


def test_extract_visual_tokens_matches_transformers_get_image_features():
    from transformers import InternVLConfig, InternVLModel
    vit_kw = dict(hidden_size=16, num_attention_heads=2, intermediate_size=32, num_hidden_layers=2, image_size=56,
                  patch_size=14)
    vit = InternVisionModel(InternVisionConfig(**vit_kw)).eval()
    mlp1 = build_mlp1(16, 24)
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in list(vit.parameters()) + list(mlp1.parameters()):
            p.copy_(torch.randn(p.shape, generator=gen) * 0.3)
    config = InternVLConfig(
        vision_config=dict(vit_kw, use_mean_pooling=True, attention_bias=True),
        text_config=dict(model_type='qwen2', hidden_size=24, intermediate_size=48, num_hidden_layers=1,
                         num_attention_heads=2, num_key_value_heads=1, vocab_size=64),
        downsample_ratio=0.5)
    ref = InternVLModel(config).eval()
    state = {'vision_tower.' + k: v for k, v in intern_vit_to_transformers(vit.state_dict()).items()}
    names = {'0': 'layer_norm', '1': 'linear_1', '3': 'linear_2'}  # mlp1.i → multi_modal_projector.*
    state.update({f'multi_modal_projector.{names[k.split(".")[0]]}.{k.split(".", 1)[1]}': v
                  for k, v in mlp1.state_dict().items()})
    result = ref.load_state_dict(state, strict=False)
    assert [k for k in result.missing_keys if not k.startswith('language_model.')] == []
    assert result.unexpected_keys == []
    px = torch.randn(3, 3, 56, 56, generator=gen)
    with torch.no_grad():
        for layer in (-1, -2):
            ours = extract_visual_tokens(vit, mlp1, px, select_layer=layer)
            theirs = ref.get_image_features(px, vision_feature_layer=layer,
                                            vision_feature_select_strategy='default').pooler_output
            assert ours.shape == (3, 4, 24)
            torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=0)
        assert not torch.allclose(extract_visual_tokens(vit, mlp1, px, select_layer=-2),
                                  extract_visual_tokens(vit, mlp1, px))
        with pytest.raises(IndexError, match='select_layer 5'):
            extract_visual_tokens(vit, mlp1, px, select_layer=5)
