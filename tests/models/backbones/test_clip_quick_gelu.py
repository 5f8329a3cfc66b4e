"""OpenAI CLIP weights need QuickGELU: the backbone picks it from the tag, or from the architecture for a file."""
import open_clip
import open_clip.pretrained as oc_pretrained
import pytest
import torch
from open_clip.transformer import QuickGELU
from torch import nn

from ovseg.models.backbones.clip_backbone import CLIPBackbone, required_quick_gelu

TINY = 'ovseg-tiny-resnet'


def _text_act(backbone):
    return backbone.clip_model.transformer.resblocks[0].mlp.gelu


def test_required_quick_gelu_of_released_weights():
    assert required_quick_gelu('RN50', oc_pretrained.get_pretrained_cfg('RN50', 'openai')) is True
    assert required_quick_gelu('convnext_large_d_320',
                               oc_pretrained.get_pretrained_cfg('convnext_large_d_320',
                                                                'laion2b_s29b_b131k_ft_soup')) is False
    for arch in ('RN50', 'RN101', 'RN50x4', 'RN50x16', 'RN50x64'):  # a local OpenAI RN file: all tags agree
        assert required_quick_gelu(arch) is True, arch
    assert required_quick_gelu('convnext_large_d_320') is False
    assert required_quick_gelu(TINY) is False  # no released weights: plain GELU
    with pytest.raises(ValueError, match=r"'ViT-B-32' need QuickGELU: its open_clip tags disagree .*'openai'"):
        required_quick_gelu('ViT-B-32')


@pytest.fixture()
def openai_like_tag(tmp_path, monkeypatch):
    """A tag of the tiny ResNet CLIP marked quick_gelu like open_clip's 'openai' ones, its file in cache_dir."""
    torch.manual_seed(0)
    weights = tmp_path / 'tiny_openai.pt'
    torch.save(open_clip.create_model(TINY, pretrained=None).state_dict(), weights)
    monkeypatch.setitem(oc_pretrained._PRETRAINED, TINY,
                        {'openai_like': dict(url='https://example.invalid/tiny_openai.pt', quick_gelu=True)})
    return weights


def test_tag_and_local_openai_weights_get_quick_gelu(openai_like_tag):
    by_tag = CLIPBackbone(TINY, pretrained='openai_like', cache_dir=str(openai_like_tag.parent))
    assert by_tag.weights_loaded and by_tag.quick_gelu and isinstance(_text_act(by_tag), QuickGELU)
    by_file = CLIPBackbone(TINY, pretrained=str(openai_like_tag))  # every tag of the arch is QuickGELU
    assert by_file.quick_gelu and isinstance(_text_act(by_file), QuickGELU)
    forced = CLIPBackbone(TINY, pretrained=str(openai_like_tag), force_quick_gelu=False)
    assert not forced.quick_gelu and type(_text_act(forced)) is nn.GELU
    # the activation is what changes the features: same weights, different text embeddings
    tokens = open_clip.get_tokenizer(TINY)(['a photo of a cat'])
    with torch.no_grad():
        assert not torch.allclose(by_file.clip_model.encode_text(tokens), forced.clip_model.encode_text(tokens))


def test_ambiguous_local_file_needs_force_quick_gelu(openai_like_tag, monkeypatch):
    monkeypatch.setitem(oc_pretrained._PRETRAINED, TINY, {
        'openai_like': dict(url='https://example.invalid/a.pt', quick_gelu=True),
        'laion_like': dict(url='https://example.invalid/b.pt')})
    with pytest.raises(ValueError, match=r"CLIPBackbone\('ovseg-tiny-resnet'.* tags disagree .*force_quick_gelu"):
        CLIPBackbone(TINY, pretrained=str(openai_like_tag))
    assert CLIPBackbone(TINY, pretrained=str(openai_like_tag), force_quick_gelu=True).quick_gelu


def test_random_init_follows_force_flag():
    with pytest.warns(UserWarning, match='RANDOM'):
        plain = CLIPBackbone(TINY, pretrained=None, allow_random_init=True)
    with pytest.warns(UserWarning, match='RANDOM'):
        quick = CLIPBackbone(TINY, pretrained=None, allow_random_init=True, force_quick_gelu=True)
    assert type(_text_act(plain)) is nn.GELU and isinstance(_text_act(quick), QuickGELU)


def test_r50_config_resolves_to_quick_gelu(repo_root):
    from mmengine.config import Config
    backbone = Config.fromfile(str(repo_root / 'configs/_base_/models/fcclip_r50.py')).model.backbone
    assert backbone.get('force_quick_gelu') is None  # resolved from the weights: tag or RN50 file
    assert required_quick_gelu(backbone.model_name,
                               oc_pretrained.get_pretrained_cfg(backbone.model_name, backbone.pretrained))
    assert required_quick_gelu(backbone.model_name)
