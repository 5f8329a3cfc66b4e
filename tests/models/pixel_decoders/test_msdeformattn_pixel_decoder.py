"""MSDeformAttnPixelDecoder: official parameter names/shapes, output shapes, fp32 under autocast."""
import pytest
import torch

from ovseg.models.pixel_decoders import MSDeformAttnPixelDecoder
from tests.helpers.fcclip_keys import official_entries

KEYS = {'convnext_large': (192, 384, 768, 1536), 'r50': (256, 512, 1024, 2048)}


def _official(model):
    return {k: shape for k, (shape, _) in official_entries(model, 'sem_seg_head.pixel_decoder.').items()}


def _shape(chans):
    return {f'res{i + 2}': dict(channels=c, stride=4 * 2 ** i) for i, c in enumerate(chans)}


@pytest.mark.parametrize('model', ['convnext_large', 'r50'])
def test_state_dict_matches_official_names(model):
    official = _official(model)
    ours = {k: tuple(v.shape) for k, v in MSDeformAttnPixelDecoder(_shape(KEYS[model])).state_dict().items()}
    assert ours == official


def test_outputs_and_fp32_under_autocast():
    torch.manual_seed(0)
    dec = MSDeformAttnPixelDecoder(_shape((16, 32, 64, 128)), conv_dim=32, mask_dim=24,
                                   transformer_enc_layers=2, transformer_nheads=4, transformer_dim_feedforward=64)
    feats = {f'res{i + 2}': torch.randn(2, c, 64 // 4 // 2 ** i, 64 // 4 // 2 ** i)
             for i, c in enumerate((16, 32, 64, 128))}
    with torch.autocast('cpu', dtype=torch.bfloat16):
        mask_features, multi_scale = dec({k: v.bfloat16() for k, v in feats.items()})
    assert mask_features.shape == (2, 24, 16, 16) and mask_features.dtype == torch.float32
    assert [tuple(x.shape[-2:]) for x in multi_scale] == [(2, 2), (4, 4), (8, 8)]
    assert all(x.dtype == torch.float32 for x in multi_scale)
    mask_features.sum().backward()
    assert all(p.grad is not None for p in dec.parameters())


def test_missing_input_level_is_named():
    with pytest.raises(KeyError, match='res5'):
        MSDeformAttnPixelDecoder({'res2': dict(channels=8, stride=4)})
