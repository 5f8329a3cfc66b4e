"""CLIPBackbone: features/strides/channels, frozen + eval, weight resolution, out-of-vocab visual path."""
import math
import os
import re
import warnings

import open_clip
import pytest
import torch

from ovseg.models.backbones import TINY_CLIP_CONFIGS, CLIPBackbone, mask_attention_pool
from ovseg.registry import MODELS


def _build(name, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        return MODELS.build(dict(type='CLIPBackbone', model_name=name, pretrained=None,
                                 allow_random_init=True, **kw))


@pytest.fixture(scope='module')
def tiny_convnext():
    torch.manual_seed(0)
    return _build('ovseg-tiny-convnext')


@pytest.fixture(scope='module')
def tiny_resnet():
    torch.manual_seed(0)
    return _build('ovseg-tiny-resnet')


def test_presets_registered_with_open_clip():
    for name in TINY_CLIP_CONFIGS:
        assert name in open_clip.list_models()


@pytest.mark.parametrize('fixture,channels,embed', [
    ('tiny_convnext', dict(stem=40, res2=40, res3=80, res4=160, res5=320, clip_vis_dense=320), 64),
    ('tiny_resnet', dict(stem=16, res2=64, res3=128, res4=256, res5=512, clip_vis_dense=512), 64),
])
def test_feature_shapes_strides_channels(request, fixture, channels, embed):
    bb = request.getfixturevalue(fixture)
    assert bb.output_channels == channels
    assert bb.embed_dim == embed
    h, w = 64, 96
    out = bb(torch.randn(2, 3, h, w))
    assert set(out) == {'stem', 'res2', 'res3', 'res4', 'res5', 'clip_vis_dense'}
    for k, v in out.items():
        s = bb.output_strides[k]
        assert tuple(v.shape) == (2, channels[k], h // s, w // s), k
        assert not v.requires_grad
    if bb.model_type == 'resnet':
        assert torch.equal(out['clip_vis_dense'], out['res5'])


def test_frozen_and_eval_survive_train(tiny_convnext, tiny_resnet):
    for bb in (tiny_convnext, tiny_resnet):
        parent = torch.nn.Sequential(bb, torch.nn.Linear(2, 2))
        parent.train()
        assert not bb.training
        assert all(not m.training for m in bb.modules())
        assert all(not p.requires_grad for p in bb.parameters())
        assert parent[1].training
        x = torch.randn(1, 3, 64, 64, requires_grad=True)
        out = bb(x)
        assert all(v.grad_fn is None for v in out.values())


def test_resnet_batchnorm_stats_untouched_in_train(tiny_resnet):
    bn = tiny_resnet.clip_model.visual.bn1
    before = bn.running_mean.clone()
    tiny_resnet.train()
    tiny_resnet(torch.randn(2, 3, 64, 64) * 5 + 3)
    assert torch.equal(before, bn.running_mean)


def test_clip_logit_scale(tiny_convnext):
    assert torch.isclose(tiny_convnext.clip_logit_scale, torch.tensor(1 / 0.07))
    tiny_convnext.clip_model.logit_scale.data.fill_(math.log(1000.0))
    try:
        assert float(tiny_convnext.clip_logit_scale) == 100.0
    finally:
        tiny_convnext.clip_model.logit_scale.data.fill_(math.log(1 / 0.07))


def test_random_init_refused_without_flag_names_tag(tmp_path):
    with pytest.raises(FileNotFoundError) as exc:
        CLIPBackbone('ovseg-tiny-convnext', pretrained='laion2b_s29b_b131k_ft_soup')
    assert 'laion2b_s29b_b131k_ft_soup' in str(exc.value)
    # a real tag that is not cached: message names model, tag, where we looked and how to fetch it
    with pytest.raises(FileNotFoundError) as exc:
        CLIPBackbone('RN50', pretrained='openai', cache_dir=str(tmp_path))
    msg = str(exc.value)
    assert "'RN50'" in msg and "'openai'" in msg and str(tmp_path) in msg and 'allow_random_init' in msg
    missing = tmp_path / 'nope.bin'
    with pytest.raises(FileNotFoundError, match='nope.bin'):
        CLIPBackbone('ovseg-tiny-convnext', pretrained=str(missing))
    with pytest.raises(FileNotFoundError, match='pretrained=None'):
        CLIPBackbone('ovseg-tiny-convnext', pretrained=None)


def test_random_init_warns_with_flag():
    with pytest.warns(UserWarning, match='RANDOM'):
        bb = CLIPBackbone('ovseg-tiny-resnet', pretrained='openai', allow_random_init=True)
    assert not bb.weights_loaded and not bb.identity_is_stable


def test_local_file_weights_roundtrip(tmp_path, tiny_convnext):
    path = tmp_path / 'tiny.pt'
    torch.save(tiny_convnext.clip_model.state_dict(), path)
    bb = CLIPBackbone('ovseg-tiny-convnext', pretrained=str(path))
    assert bb.weights_loaded and bb.identity_is_stable
    x = torch.randn(1, 3, 64, 64)
    assert torch.allclose(bb(x)['res5'], tiny_convnext(x)['res5'], atol=1e-6)


def test_model_cfg_override():
    cfg = dict(TINY_CLIP_CONFIGS['ovseg-tiny-convnext'], embed_dim=32)
    bb = _build('my-tiny', model_cfg=cfg)
    assert bb.embed_dim == 32 and bb.model_type == 'convnext'
    # same name, different cfg than a builtin -> registered under a derived name, builtin untouched
    bb2 = _build('ovseg-tiny-convnext', model_cfg=cfg)
    assert bb2.arch_name != 'ovseg-tiny-convnext' and bb2.embed_dim == 32
    assert open_clip.factory.get_model_config('ovseg-tiny-convnext')['embed_dim'] == 64


def test_convnext_mask_embeddings(tiny_convnext):
    img = torch.randn(1, 3, 64, 64)
    dense = tiny_convnext(img)['clip_vis_dense']  # 2×2
    masks = torch.full((1, 3, 2, 2), -1.0)
    masks[0, 0] = 1.0  # the whole image
    masks[0, 1, 0, 0] = 1.0  # one cell
    emb = tiny_convnext.mask_embeddings(dense, masks)
    assert emb.shape == (1, 3, 64)
    # full-image pooling == CLIP's own image embedding (trunk avg-pool + head norm + projection)
    with torch.no_grad():
        ref = tiny_convnext.clip_model.encode_image(img)
        cell = tiny_convnext.clip_model.visual.head(tiny_convnext.clip_model.visual.trunk.head(dense[..., :1, :1]))
    assert torch.allclose(emb[:, 0], ref, atol=1e-5)
    assert torch.allclose(emb[:, 1], cell, atol=1e-5)


def test_resnet_mask_attention_pool_matches_clip_with_full_mask(tiny_resnet):
    img = torch.randn(2, 3, 64, 64)
    dense = tiny_resnet(img)['clip_vis_dense']  # 2×2 grid == attnpool's native grid
    full = torch.ones(2, 1, 2, 2)
    emb = tiny_resnet.mask_embeddings(dense, full)
    with torch.no_grad():
        ref = tiny_resnet.clip_model.encode_image(img)
    # masked pool with an all-ones mask attends to all pixels but not to the mean token itself,
    # so it differs from CLIP's pool slightly; check it is close in direction and exact in shape
    assert emb.shape == (2, 1, 64)
    assert torch.nn.functional.cosine_similarity(emb[:, 0], ref).min() > 0.9


def test_resnet_mask_attention_pool_restricts_to_mask(tiny_resnet):
    torch.manual_seed(1)
    dense = torch.randn(1, 512, 4, 4)
    masks = torch.full((1, 3, 4, 4), -1.0)
    masks[0, 0, :2, :2] = 1.0
    masks[0, 1] = 1.0
    # mask 2 stays empty -> falls back to global attention (finite), not NaN
    emb = tiny_resnet.mask_embeddings(dense, masks)
    assert emb.shape == (1, 3, 64) and torch.isfinite(emb).all()
    assert torch.allclose(emb[0, 2], emb[0, 1], atol=1e-5)
    # features outside mask 0 only matter through the query (global mean): keep the mean, change content
    attn = tiny_resnet.clip_model.visual.attnpool
    dense2 = dense.clone()
    dense2[..., 2:, 2:] += 3.0
    delta = dense2.mean((-1, -2)) - dense.mean((-1, -2))
    dense3 = dense.clone()  # same global mean, different content outside the mask
    dense3[..., 3, 3] += 1.0
    dense3[..., 2, 3] -= 1.0
    e1 = mask_attention_pool(attn, dense, masks[:, :1])
    e3 = mask_attention_pool(attn, dense3, masks[:, :1])
    assert torch.allclose(e1, e3, atol=1e-5)
    assert delta.abs().sum() > 0


def test_init_weights_is_noop(tiny_convnext):
    before = tiny_convnext.clip_model.visual.trunk.stem[0].weight.clone()
    tiny_convnext.init_weights()
    assert torch.equal(before, tiny_convnext.clip_model.visual.trunk.stem[0].weight)


@pytest.mark.slow
def test_real_architectures_build_random_and_report_channels():
    torch.manual_seed(0)
    bb = _build('convnext_large_d_320')
    assert bb.output_channels == dict(stem=192, res2=192, res3=384, res4=768, res5=1536, clip_vis_dense=1536)
    assert bb.embed_dim == 768
    out = bb(torch.randn(1, 3, 64, 64))
    assert out['res5'].shape == (1, 1536, 2, 2) and out['clip_vis_dense'].shape == (1, 1536, 2, 2)
    _assert_matches_official(bb, 'fcclip_convnext_large_keys.txt')
    del bb
    rn = _build('RN50')
    assert rn.embed_dim == 1024
    assert rn.output_channels == dict(stem=64, res2=256, res3=512, res4=1024, res5=2048, clip_vis_dense=2048)
    out = rn(torch.randn(1, 3, 64, 64))
    assert out['clip_vis_dense'].shape == (1, 2048, 2, 2)
    emb = rn.mask_embeddings(out['clip_vis_dense'], torch.ones(1, 2, 2, 2))
    assert emb.shape == (1, 2, 1024)
    _assert_matches_official(rn, 'fcclip_r50_keys.txt')


def _assert_matches_official(bb, keys_file):
    """Names and shapes of ``backbone.clip_model.*`` equal the official FC-CLIP state dict (if available)."""
    path = os.path.join(os.path.dirname(__file__), '..', '..', 'data', 'fcclip_keys', keys_file)
    if not os.path.isfile(path):
        pytest.skip(f'{path} not available')
    ref = {}
    for line in open(path):
        if line.startswith('backbone.'):
            name, shape, _ = line.rstrip('\n').split('\t')
            ref[name[len('backbone.'):]] = tuple(int(s) for s in re.findall(r'\d+', shape))
    ours = {k: tuple(v.shape) for k, v in bb.state_dict().items()}
    assert set(ref) == set(ours), (sorted(set(ref) - set(ours))[:5], sorted(set(ours) - set(ref))[:5])
    assert {k: ours[k] for k in ref} == ref


def _fake_hf_cache(cache_dir, repo_id, filename, payload_path):
    """Lay out a Hugging Face hub cache entry (what hf_hub_download leaves behind) without any network."""
    repo_dir = cache_dir / ('models--' + repo_id.replace('/', '--'))
    snap = repo_dir / 'snapshots' / ('0' * 40)
    snap.mkdir(parents=True)
    (repo_dir / 'refs').mkdir()
    (repo_dir / 'refs' / 'main').write_text('0' * 40)
    os.replace(payload_path, snap / filename)
    return snap / filename


def test_tag_resolved_from_local_hf_cache_offline(tmp_path, monkeypatch, tiny_convnext):
    from open_clip import pretrained as oc_pretrained
    from safetensors.torch import save_file

    from ovseg.models.backbones import resolve_local_pretrained
    monkeypatch.setitem(oc_pretrained._PRETRAINED, 'ovseg-tiny-convnext',
                        {'unit_test_tag': dict(hf_hub='ovseg-test/tiny-convnext/', quick_gelu=False)})
    cache = tmp_path / 'hf'
    path, cfg, searched = resolve_local_pretrained('ovseg-tiny-convnext', 'unit_test_tag', str(cache))
    assert path is None and cfg and searched
    with pytest.raises(FileNotFoundError, match='unit_test_tag'):
        CLIPBackbone('ovseg-tiny-convnext', pretrained='unit_test_tag', cache_dir=str(cache))
    tmp_file = tmp_path / 'w.safetensors'
    save_file({k: v.contiguous() for k, v in tiny_convnext.clip_model.state_dict().items()}, str(tmp_file))
    target = _fake_hf_cache(cache, 'ovseg-test/tiny-convnext', 'open_clip_model.safetensors', tmp_file)
    path, _, _ = resolve_local_pretrained('ovseg-tiny-convnext', 'unit_test_tag', str(cache))
    assert path == str(target)
    bb = CLIPBackbone('ovseg-tiny-convnext', pretrained='unit_test_tag', cache_dir=str(cache))
    assert bb.weights_loaded and bb.identity_is_stable
    x = torch.randn(1, 3, 64, 64)
    assert torch.allclose(bb(x)['clip_vis_dense'], tiny_convnext(x)['clip_vis_dense'], atol=1e-6)


def test_openai_url_cache_location(tmp_path):
    from ovseg.models.backbones import resolve_local_pretrained
    path, cfg, searched = resolve_local_pretrained('RN50', 'openai', str(tmp_path))
    assert path is None and cfg.get('quick_gelu') is True
    (tmp_path / 'RN50.pt').write_bytes(b'x')
    path, _, _ = resolve_local_pretrained('RN50', 'openai', str(tmp_path))
    assert path == str(tmp_path / 'RN50.pt')
