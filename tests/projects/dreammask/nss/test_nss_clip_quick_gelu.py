"""NSS CLIP scorer: OpenAI ViT-B/32 weights are built with QuickGELU (the 0.25 clip_score threshold assumes it)."""
import copy

import open_clip
import open_clip.factory as oc_factory
import open_clip.pretrained as oc_pretrained
import pytest
import torch
from open_clip.transformer import QuickGELU
from torch import nn

from projects.dreammask.dreammask.nss.masks import build_clip
from projects.dreammask.dreammask.nss.masks.clip_score import TINY_CLIP_CFG

ARCH = 'nss-test-vit'  # the tiny ViT of the toy scorer under a name that goes through the real-weights path


def _acts(model):
    return type(model.visual.transformer.resblocks[0].mlp.gelu), type(model.transformer.resblocks[0].mlp.gelu)


@pytest.fixture()
def weights(tmp_path, monkeypatch):
    monkeypatch.setitem(oc_factory._MODEL_CONFIGS, ARCH, copy.deepcopy(TINY_CLIP_CFG))
    monkeypatch.setitem(oc_pretrained._PRETRAINED, ARCH, {
        'openai': dict(url='https://example.invalid/nss_test_vit_openai.pt', quick_gelu=True),
        'laion2b': dict(url='https://example.invalid/nss_test_vit_laion.pt')})  # mixed, as ViT-B-32's tags
    torch.manual_seed(0)
    path = tmp_path / 'nss_test_vit_openai.pt'
    torch.save(open_clip.create_model(ARCH, pretrained=None).state_dict(), path)
    return path


def test_openai_tag_builds_quick_gelu(weights):
    model, _, _ = build_clip(ARCH, pretrained='openai', cache_dir=str(weights.parent))
    assert _acts(model) == (QuickGELU, QuickGELU)


def test_local_file_needs_the_flag_and_honours_it(weights):
    with pytest.raises(ValueError, match="NSS CLIP scorer nss-test-vit .* tags disagree .*force_quick_gelu=True"):
        build_clip(ARCH, pretrained=str(weights))
    quick, _, tok = build_clip(ARCH, pretrained=str(weights), force_quick_gelu=True)
    plain, _, _ = build_clip(ARCH, pretrained=str(weights), force_quick_gelu=False)
    assert _acts(quick) == (QuickGELU, QuickGELU) and _acts(plain) == (nn.GELU, nn.GELU)
    with torch.no_grad():  # same weights, different scores: the activation is what the threshold depends on
        assert not torch.allclose(quick.encode_text(tok(['a cat'])), plain.encode_text(tok(['a cat'])))


def test_dreammask_config_states_quick_gelu(repo_root):
    from mmengine.config import Config
    clip = Config.fromfile(str(repo_root / 'configs/nss/coco_gpt.py')).masks.scorer.clip
    assert (clip.model, clip.pretrained, clip.force_quick_gelu) == ('ViT-B-32', 'openai', True)
