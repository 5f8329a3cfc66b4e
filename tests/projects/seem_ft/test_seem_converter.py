"""tools/model_converters/seem_to_ovseg.py on a fake checkpoint with the official SEEM v1 names and shapes (tiny
sizes): round trip loads strictly into the tiny SEEM, shape mismatches are refused with a list, extra official
keys are reported (an error with --strict), ignored-by-design keys are listed, the preset is inferred."""
import sys

import pytest
import torch

from ovseg.cli import run_tool
from tests.projects.seem_ft.tiny_seem import TINY_CONFIG, build_tiny, fake_official_checkpoint

sys.path.insert(0, 'tools/model_converters')
import seem_to_ovseg as conv  # noqa: E402


@pytest.fixture(scope='module')
def official():
    return fake_official_checkpoint()


def test_round_trip_loads_strictly(tmp_path, official):
    src, dst = tmp_path / 'seem_tiny_v1.pt', tmp_path / 'out.pth'
    torch.save(official, src)  # a plain state dict, as released
    report = conv.convert_file(str(src), str(dst), config=TINY_CONFIG, strict=True)
    assert report['ignored_by_design'] == ['criterion.empty_weight', 'dilation_kernel']
    assert report['unmatched_official'] == [] and report['missing_in_model'] == []
    assert report['num_converted'] == len(official) - 2
    ckpt = torch.load(dst, weights_only=True)
    assert set(ckpt) == {'state_dict', 'meta'} and ckpt['meta']['seem_converter']['num_converted'] > 0
    model = build_tiny(criterion=False)
    model.load_state_dict(ckpt['state_dict'], strict=True)
    sd = model.state_dict()
    key = 'sem_seg_head.predictor.lang_encoder.lang_encoder.resblocks.0.attn.in_proj_weight'
    assert torch.equal(sd['text_encoder.lang_encoder.transformer.resblocks.0.attn.in_proj_weight'], official[key])
    assert torch.equal(sd['transformer_decoder.mask_sptial_embed.1'],
                       official['sem_seg_head.predictor.mask_sptial_embed.1'])
    assert torch.equal(sd['transformer_decoder.class_embed'], official['sem_seg_head.predictor.class_embed'])
    assert torch.equal(sd['pixel_decoder.layer_4.norm.weight'],
                       official['sem_seg_head.pixel_decoder.layer_4.norm.weight'])
    # {'model': ...} wrapping is accepted too
    torch.save({'model': official}, src)
    assert conv.convert_file(str(src), str(dst), config=TINY_CONFIG)['num_converted'] == report['num_converted']


def test_shape_mismatch_is_refused_with_a_list(tmp_path, official):
    bad = dict(official)
    bad['sem_seg_head.predictor.class_embed'] = torch.zeros(32, 64)
    bad['backbone.norm0.weight'] = torch.zeros(9)
    src, dst = tmp_path / 'bad.pt', tmp_path / 'out.pth'
    torch.save(bad, src)
    with pytest.raises(conv.ShapeMismatchError) as err:
        conv.convert_file(str(src), str(dst), config=TINY_CONFIG)
    msg = str(err.value)
    assert '2 SEEM tensors' in msg
    assert 'sem_seg_head.predictor.class_embed -> transformer_decoder.class_embed: checkpoint (32, 64) vs model ' \
           '(32, 32)' in msg
    assert 'backbone.norm0.weight -> backbone.norm0.weight: checkpoint (9,) vs model (8,)' in msg
    assert not dst.exists()


def test_extra_official_key_is_reported_and_strict_fails(tmp_path, official):
    extra = dict(official)
    extra['sem_seg_head.predictor.bbox_embed.layers.0.weight'] = torch.zeros(4, 4)
    extra['some_other.weight'] = torch.zeros(2)
    del extra['sem_seg_head.predictor.pn_indicator.weight']
    src, dst = tmp_path / 'extra.pt', tmp_path / 'out.pth'
    torch.save(extra, src)
    report = conv.convert_file(str(src), str(dst), config=TINY_CONFIG)
    assert report['unmatched_official'] == ['some_other.weight', 'sem_seg_head.predictor.bbox_embed.layers.0.weight']
    assert report['missing_in_model'] == ['transformer_decoder.pn_indicator.weight']
    text = conv.summary(report)
    assert 'unmatched_official (2)' in text and 'missing_in_model (1)' in text and 'ignored_by_design (2)' in text
    with pytest.raises(ValueError, match='--strict: 2 official keys'):
        conv.convert_file(str(src), str(dst), config=TINY_CONFIG, strict=True)


def test_preset_inference():
    assert conv.infer_preset({'backbone.patch_embed.proj.weight': torch.zeros(96, 3, 7, 7),
                              'backbone.layers.0.blocks.0.dw1.weight': torch.zeros(1)}) == 'focalt'
    assert conv.infer_preset({'backbone.patch_embed.proj.weight': torch.zeros(192, 3, 7, 7)}) == 'focall'
    with pytest.raises(ValueError, match='neither'):
        conv.infer_preset({'backbone.patch_embed.proj.weight': torch.zeros(8, 3, 7, 7)})
    for preset in ('focalt', 'focall'):  # the full-size configs build (on the meta device)
        sd = conv.build_reference_model(conv.PRESET_CONFIGS[preset]).state_dict()
        assert sd['transformer_decoder.query_feat.weight'].shape == (101, 512)
        assert sd['transformer_decoder.class_embed'].shape == (512, 512)


def test_cli_reports_and_refuses(tmp_path, official, capsys):
    src = tmp_path / 'ok.pt'
    torch.save(official, src)
    with pytest.raises(SystemExit) as done:
        run_tool(conv.main, [str(src), str(tmp_path / 'o.pth'), '--config', TINY_CONFIG])
    assert done.value.code == 0 and 'ignored_by_design (2)' in capsys.readouterr().out
    bad = dict(official)
    bad['sem_seg_head.predictor.query_feat.weight'] = torch.zeros(3, 3)
    torch.save(bad, src)
    with pytest.raises(SystemExit) as done:
        run_tool(conv.main, [str(src), str(tmp_path / 'o2.pth'), '--config', TINY_CONFIG])
    err = capsys.readouterr().err
    assert done.value.code == 1 and 'do not fit' in err and 'query_feat.weight' in err
    assert not (tmp_path / 'o2.pth').exists()
