"""InternViT: parity with transformers' InternVLVisionModel through the explicit name map, config reading,
stochastic depth, hidden states, gradient checkpointing, input checks."""
import logging

import pytest
import torch

from projects.sa2va_sft.sa2va_sft.intern_vit import DropPath, InternVisionConfig, InternVisionModel, RMSNorm
from projects.sa2va_sft.sa2va_sft.release_names import intern_vit_to_transformers

transformers = pytest.importorskip('transformers')

TINY = dict(hidden_size=32, num_attention_heads=4, intermediate_size=64, num_hidden_layers=2, image_size=56,
            patch_size=14)
#: InternVL2.5 / InternVL3 InternViT-300M style, and InternViT-6B style (RMSNorm, qk-norm, no qkv bias).
VARIANTS = {
    '300m': dict(norm_type='layer_norm', qk_normalization=False, qkv_bias=True),
    '6b': dict(norm_type='rms_norm', qk_normalization=True, qkv_bias=False),
}


def _randomize(model: torch.nn.Module, seed: int = 0) -> None:
    """Random values everywhere (layer scales, norms, embeddings too), so a wrong mapping cannot hide."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.3)


def _pair(variant: str, attn: str):
    from transformers import InternVLVisionConfig, InternVLVisionModel
    ours = InternVisionModel(InternVisionConfig(**TINY, **VARIANTS[variant])).eval()
    _randomize(ours)
    v = VARIANTS[variant]
    hf_cfg = InternVLVisionConfig(**TINY, norm_type=v['norm_type'], use_qk_norm=v['qk_normalization'],
                                  attention_bias=v['qkv_bias'], layer_norm_eps=1e-6, hidden_act='gelu',
                                  use_mean_pooling=True)  # use_mean_pooling: no final LayerNorm, as InternViT
    hf_cfg._attn_implementation = attn
    theirs = InternVLVisionModel(hf_cfg).eval()
    result = theirs.load_state_dict(intern_vit_to_transformers(ours.state_dict()), strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    return ours, theirs


@pytest.mark.parametrize('variant', sorted(VARIANTS))
@pytest.mark.parametrize('attn', ['eager', 'sdpa'])
def test_parity_with_transformers_internvl_vision(variant, attn):
    ours, theirs = _pair(variant, attn)
    gen = torch.Generator().manual_seed(1)
    # native 56x56, and non-square / smaller inputs where both interpolate the position embedding bicubically
    for size in [(56, 56), (84, 56), (28, 42)]:
        x = torch.randn(2, 3, *size, generator=gen)
        with torch.no_grad():
            a = ours(x, output_hidden_states=True)
            b = theirs(x, output_hidden_states=True)
        n = (size[0] // 14) * (size[1] // 14) + 1
        assert a.last_hidden_state.shape == (2, n, 32)
        torch.testing.assert_close(a.last_hidden_state, b.last_hidden_state, atol=1e-5, rtol=0)
        assert len(a.hidden_states) == len(b.hidden_states) == TINY['num_hidden_layers'] + 1
        for mine, ref in zip(a.hidden_states, b.hidden_states):
            torch.testing.assert_close(mine, ref, atol=1e-5, rtol=0)
        assert torch.equal(a.hidden_states[-1], a.last_hidden_state)


def test_parity_detects_a_wrong_qkv_split():
    """The comparison can fail: swapping the q and k rows of the fused qkv breaks it."""
    ours, theirs = _pair('300m', 'eager')
    sd = intern_vit_to_transformers(ours.state_dict())
    for i in range(TINY['num_hidden_layers']):
        p = f'encoder.layer.{i}.attention.'
        sd[p + 'q_proj.weight'], sd[p + 'k_proj.weight'] = sd[p + 'k_proj.weight'], sd[p + 'q_proj.weight']
    theirs.load_state_dict(sd)
    x = torch.randn(1, 3, 56, 56)
    with torch.no_grad():
        diff = (ours(x).last_hidden_state - theirs(x).last_hidden_state).abs().max().item()
    assert diff > 1e-3


def test_layer_scales_multiply_the_branches():
    """ls1 = ls2 = 0 turns every layer into the identity (the scales sit on the residual branches)."""
    model = InternVisionModel(InternVisionConfig(**TINY)).eval()
    with torch.no_grad():
        for layer in model.encoder.layers:
            layer.ls1.zero_()
            layer.ls2.zero_()
        x = torch.randn(1, 3, 56, 56)
        out = model(x, output_hidden_states=True)
    assert torch.equal(out.last_hidden_state, out.hidden_states[0])


def test_parameter_names_are_the_release_names():
    model = InternVisionModel(InternVisionConfig(**TINY, **VARIANTS['6b']))
    names = set(model.state_dict())
    assert {'embeddings.class_embedding', 'embeddings.patch_embedding.weight', 'embeddings.position_embedding',
            'encoder.layers.1.ls1', 'encoder.layers.1.ls2', 'encoder.layers.1.norm1.weight',
            'encoder.layers.1.attn.qkv.weight', 'encoder.layers.1.attn.q_norm.weight',
            'encoder.layers.1.attn.k_norm.weight', 'encoder.layers.1.attn.proj.bias',
            'encoder.layers.1.mlp.fc1.weight', 'encoder.layers.1.mlp.fc2.bias'} <= names
    assert 'encoder.layers.1.attn.qkv.bias' not in names  # qkv_bias False
    assert 'encoder.layers.1.norm1.bias' not in names  # RMSNorm has no bias
    assert isinstance(model.encoder.layers[0].norm1, RMSNorm)
    assert model.embeddings.position_embedding.shape == (1, 17, 32)
    torch.testing.assert_close(InternVisionModel(InternVisionConfig(**TINY, initializer_factor=0.1))
                               .encoder.layers[0].ls1.data, torch.full((32,), 0.1))


RELEASE_VISION_CONFIG = {  # an InternVL3 release vision_config (keys as published; MoE fields unused)
    'architectures': ['InternVisionModel'], 'attention_dropout': 0.0, 'capacity_factor': 1.2,
    'drop_path_rate': 0.1, 'dropout': 0.0, 'hidden_act': 'gelu', 'hidden_size': 1024, 'image_size': 448,
    'initializer_factor': 0.1, 'initializer_range': 1e-10, 'intermediate_size': 4096, 'layer_norm_eps': 1e-06,
    'model_type': 'intern_vit_6b', 'norm_type': 'layer_norm', 'num_attention_heads': 16, 'num_channels': 3,
    'num_hidden_layers': 24, 'patch_size': 14, 'qk_normalization': False, 'qkv_bias': True, 'torch_dtype': 'bfloat16',
    'use_bfloat16': True, 'use_flash_attn': False, 'use_moe': False, 'num_experts': 8,
}


def test_config_from_release_vision_config(caplog):
    with caplog.at_level(logging.DEBUG, logger='projects.sa2va_sft.sa2va_sft.intern_vit'):
        cfg = InternVisionConfig.from_dict({'vision_config': RELEASE_VISION_CONFIG, 'llm_config': {}})
    assert (cfg.hidden_size, cfg.num_hidden_layers, cfg.image_size, cfg.patch_size, cfg.drop_path_rate,
            cfg.initializer_factor, cfg.qkv_bias, cfg.grid_size) == (1024, 24, 448, 14, 0.1, 0.1, True, 32)
    text = caplog.text
    assert 'ignored' in text and 'use_flash_attn' in text and 'num_experts' in text and 'architectures' in text
    assert InternVisionConfig.from_dict(dict(RELEASE_VISION_CONFIG, image_size=[448, 448])).image_size == 448


@pytest.mark.parametrize('change,match', [
    (dict(norm_type='batch_norm'), 'norm_type'),
    (dict(use_moe=True), 'use_moe'),
    (dict(hidden_size=1000), 'divisible'),
    (dict(image_size=450), 'multiple of patch_size'),
    (dict(qkv_bias='yes'), 'qkv_bias'),
    (dict(num_hidden_layers=2.5), 'num_hidden_layers'),
    (dict(image_size=[448, 224]), 'square'),
    (dict(hidden_act='mish'), 'hidden_act'),
])
def test_config_errors_name_the_field(change, match):
    with pytest.raises((ValueError, TypeError), match=match) as info:
        InternVisionConfig.from_dict(dict(RELEASE_VISION_CONFIG, **change), source='rel/config.json')
    assert 'rel/config.json' in str(info.value)


def test_drop_path_rates_and_behaviour():
    model = InternVisionModel(InternVisionConfig(**dict(TINY, num_hidden_layers=3), drop_path_rate=0.2))
    rates = [getattr(layer.drop_path1, 'p', 0.0) for layer in model.encoder.layers]
    assert rates == pytest.approx([0.0, 0.1, 0.2])  # linspace(0, rate, layers)
    torch.manual_seed(0)
    drop = DropPath(0.25).train()
    y = drop(torch.ones(4000, 3, 2))
    per_sample = y[:, 0, 0]
    assert per_sample.unique().tolist() == pytest.approx([0.0, 1 / 0.75])  # dropped, or kept and rescaled
    assert (y == y[:, :1, :1]).all()  # one decision per sample
    assert abs((per_sample == 0).float().mean().item() - 0.25) < 0.03
    x = torch.randn(2, 3)
    assert torch.equal(drop.eval()(x), x)
    # in eval mode stochastic depth is off: same output as the same weights with rate 0
    plain = InternVisionModel(InternVisionConfig(**dict(TINY, num_hidden_layers=3))).eval()
    plain.load_state_dict(model.state_dict())
    px = torch.randn(1, 3, 56, 56)
    with torch.no_grad():
        assert torch.equal(model.eval()(px).last_hidden_state, plain(px).last_hidden_state)


def test_gradient_checkpointing_same_output_and_grads():
    torch.manual_seed(0)
    a = InternVisionModel(InternVisionConfig(**TINY)).train()
    b = InternVisionModel(InternVisionConfig(**TINY)).train()
    b.load_state_dict(a.state_dict())
    b.set_gradient_checkpointing(True)
    x = torch.randn(2, 3, 56, 56)
    ya, yb = a(x).last_hidden_state, b(x).last_hidden_state
    torch.testing.assert_close(ya, yb)
    ya.square().mean().backward()
    yb.square().mean().backward()
    for (name, pa), pb in zip(a.named_parameters(), b.parameters()):
        torch.testing.assert_close(pa.grad, pb.grad, msg=name)


def test_bad_inputs_raise():
    model = InternVisionModel(InternVisionConfig(**TINY))
    with pytest.raises(ValueError, match='multiple of the patch size 14'):
        model(torch.randn(1, 3, 50, 56))
    with pytest.raises(ValueError, match=r'\(B, 3, H, W\)'):
        model(torch.randn(3, 56, 56))
    with pytest.raises(KeyError, match='attn.extra'):
        intern_vit_to_transformers({'encoder.layers.0.attn.extra': torch.zeros(1)})


def test_registered_and_buildable_from_a_dict():
    from ovseg.registry import MODELS
    model = MODELS.build(dict(type='InternVisionModel', config=dict(TINY)))
    assert isinstance(model, InternVisionModel) and model.config.hidden_size == 32
