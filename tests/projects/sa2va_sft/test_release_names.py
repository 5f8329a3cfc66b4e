"""Reading a (fake) released Sa2VA folder: single file and shards, validation errors, the g_weight ↔ gamma
rename, and loading vision_model + mlp1 with a missing / unexpected report."""
import json
import logging
import os

import pytest
import torch

from projects.sa2va_sft.sa2va_sft.intern_vit import InternVisionConfig, InternVisionModel
from projects.sa2va_sft.sa2va_sft.projector import extract_visual_tokens
from projects.sa2va_sft.sa2va_sft.release_names import (
    build_vision_from_release,
    load_part,
    ovseg_to_release_key,
    ovseg_to_release_state_dict,
    read_release_state_dict,
    release_to_ovseg_key,
    release_to_ovseg_state_dict,
    vision_settings_from_config,
)
from tests.projects.sa2va_sft.fake_release import vision_key_shapes, write_fake_release

SAM2_SCALE = 'grounding_encoder.sam2_model.memory_encoder.fuser.layers.0.'


@pytest.mark.parametrize('variant', [dict(norm_type='layer_norm', qk_normalization=False, qkv_bias=True),
                                     dict(norm_type='rms_norm', qk_normalization=True, qkv_bias=False)])
def test_vit_names_equal_the_release_names(variant):
    """ovseg's InternViT state dict == the release's vision_model.* keys (spelled out independently)."""
    model = InternVisionModel(InternVisionConfig(hidden_size=16, num_attention_heads=2, intermediate_size=32,
                                                 num_hidden_layers=2, image_size=56, patch_size=14, **variant))
    ours = {'vision_model.' + k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert ours == vision_key_shapes(16, 32, 2, 4, 14, **variant)


def test_rename_map():
    assert release_to_ovseg_key(SAM2_SCALE + 'g_weight') == SAM2_SCALE + 'gamma'
    assert ovseg_to_release_key(SAM2_SCALE + 'gamma') == SAM2_SCALE + 'g_weight'
    for same in ('vision_model.encoder.layers.0.ls1', 'mlp1.3.weight', 'language_model.lm_head.weight',
                 'text_hidden_fcs.2.bias', 'x.g_weights', 'x.my_g_weight'):
        assert release_to_ovseg_key(same) == same == ovseg_to_release_key(same)


def test_rename_state_dict_round_trip_and_report(tmp_path):
    written = write_fake_release(tmp_path / 'rel')
    ovseg, report = release_to_ovseg_state_dict(written)
    assert SAM2_SCALE + 'gamma' in ovseg and SAM2_SCALE + 'g_weight' not in ovseg
    assert len(report.renamed) == 2 and report.outside_parts == []
    assert report.counts['mlp1.'] == 6 and report.counts['grounding_encoder.sam2_model.'] == 3
    back, _ = ovseg_to_release_state_dict(ovseg)
    assert back.keys() == written.keys() and all(back[k] is written[k] for k in written)
    _, other = release_to_ovseg_state_dict({'unknown_head.weight': torch.zeros(1), 'mlp1.0.bias': torch.zeros(1)})
    assert other.outside_parts == ['unknown_head.weight'] and 'unknown_head.weight' in other.summary()
    with pytest.raises(ValueError, match='two keys map to'):
        release_to_ovseg_state_dict({'a.gamma': torch.zeros(1), 'a.g_weight': torch.zeros(1)})


def test_read_single_file(tmp_path):
    written = write_fake_release(tmp_path)
    config, sd = read_release_state_dict(tmp_path)
    assert config['vision_config']['use_flash_attn'] is True and config['llm_config']['hidden_size'] == 24
    assert sd.keys() == written.keys()
    assert all(sd[k].dtype == torch.bfloat16 and torch.equal(sd[k], written[k]) for k in written)


def test_read_sharded_equals_single(tmp_path):
    single = write_fake_release(tmp_path / 'one')
    write_fake_release(tmp_path / 'three', num_shards=3)
    assert sorted(os.listdir(tmp_path / 'three')) == [
        'config.json', 'model-00001-of-00003.safetensors', 'model-00002-of-00003.safetensors',
        'model-00003-of-00003.safetensors', 'model.safetensors.index.json']
    _, sd = read_release_state_dict(tmp_path / 'three')
    assert sd.keys() == single.keys() and all(torch.equal(sd[k], single[k]) for k in single)
    _, part = read_release_state_dict(tmp_path / 'three', prefixes=('mlp1.', 'text_hidden_fcs.'))
    assert sorted(part) == sorted(k for k in single if k.startswith(('mlp1.', 'text_hidden_fcs.'))) and len(part) == 10
    with pytest.raises(ValueError, match="no tensor starts with any of \\['visual.'\\]"):
        read_release_state_dict(tmp_path / 'one', prefixes=('visual.',))


def test_missing_shard_is_named(tmp_path):
    write_fake_release(tmp_path, num_shards=3)
    os.remove(tmp_path / 'model-00002-of-00003.safetensors')
    with pytest.raises(FileNotFoundError, match=r"model-00002-of-00003\.safetensors.*1 of 3 shards missing"):
        read_release_state_dict(tmp_path)


def _edit_index(folder, fn):
    path = folder / 'model.safetensors.index.json'
    index = json.loads(path.read_text())
    fn(index)
    path.write_text(json.dumps(index))


def test_index_and_shards_must_agree(tmp_path):
    write_fake_release(tmp_path, num_shards=2)
    _edit_index(tmp_path, lambda ix: ix['weight_map'].__setitem__('vision_model.extra', 'model-00001-of-00002'
                                                                                        '.safetensors'))
    with pytest.raises(ValueError, match=r"model-00001-of-00002\.safetensors: 1 tensor\(s\).*vision_model\.extra"):
        read_release_state_dict(tmp_path)
    write_fake_release(tmp_path, num_shards=2)
    _edit_index(tmp_path, lambda ix: ix['weight_map'].pop('mlp1.0.bias'))
    with pytest.raises(ValueError, match=r'not mapped to it.*mlp1\.0\.bias'):
        read_release_state_dict(tmp_path)
    _edit_index(tmp_path, lambda ix: ix.pop('weight_map'))
    with pytest.raises(ValueError, match='weight_map'):
        read_release_state_dict(tmp_path)
    _edit_index(tmp_path, lambda ix: ix.__setitem__('weight_map', {'a': '../b.safetensors'}))
    with pytest.raises(ValueError, match='not a .safetensors file name'):
        read_release_state_dict(tmp_path)


def test_folder_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match='release folder not found'):
        read_release_state_dict(tmp_path / 'nope')
    write_fake_release(tmp_path, num_shards=2)
    os.remove(tmp_path / 'model.safetensors.index.json')
    with pytest.raises(FileNotFoundError, match='model.safetensors.index.json not found.*has shards'):
        read_release_state_dict(tmp_path)
    for name in os.listdir(tmp_path):
        if name.endswith('.safetensors'):
            os.remove(tmp_path / name)
    with pytest.raises(FileNotFoundError, match='no model.safetensors and no model.safetensors.index.json'):
        read_release_state_dict(tmp_path)
    os.remove(tmp_path / 'config.json')
    with pytest.raises(FileNotFoundError, match='config.json not found'):
        read_release_state_dict(tmp_path)
    (tmp_path / 'config.json').write_text('{"vision_config": ')
    with pytest.raises(ValueError, match='config.json: not valid JSON'):
        read_release_state_dict(tmp_path)
    write_fake_release(tmp_path)
    (tmp_path / 'model.safetensors').write_bytes(b'not safetensors at all')
    with pytest.raises(ValueError, match='model.safetensors: not a readable safetensors file'):
        read_release_state_dict(tmp_path)


def test_build_vision_from_release_loads_everything(tmp_path, caplog):
    written = write_fake_release(tmp_path, num_shards=2)
    with caplog.at_level(logging.WARNING):
        vit, mlp1, settings, reports = build_vision_from_release(tmp_path)
    assert caplog.records == []  # complete: nothing to warn about
    assert all(r.complete for r in reports.values())
    assert reports['vision_model.'].loaded == sum(k.startswith('vision_model.') for k in written)
    assert reports['mlp1.'].loaded == 6
    assert (settings.select_layer, settings.downsample_ratio, settings.ps_version, settings.image_size,
            settings.max_dynamic_patch, settings.use_thumbnail, settings.llm_hidden_size) == (-1, 0.5, 'v2', 56, 12,
                                                                                             True, 24)
    assert torch.equal(vit.encoder.layers[1].ls2.data, written['vision_model.encoder.layers.1.ls2'].float())
    assert torch.equal(mlp1[3].weight.data, written['mlp1.3.weight'].float())
    with torch.no_grad():
        tokens = extract_visual_tokens(vit.eval(), mlp1, torch.randn(2, 3, 56, 56), settings.select_layer,
                                       settings.downsample_ratio, settings.ps_version)
    assert tokens.shape == (2, 4, 24) and torch.isfinite(tokens).all()


def test_missing_and_unexpected_are_reported(tmp_path, caplog):
    write_fake_release(tmp_path, drop_keys=['vision_model.encoder.layers.1.ls2', 'mlp1.1.bias'],
                       extra={'vision_model.encoder.layers.0.attn.rel_pos': torch.zeros(3, dtype=torch.bfloat16)})
    with caplog.at_level(logging.WARNING):
        vit, _, _, reports = build_vision_from_release(tmp_path)
    assert reports['vision_model.'].missing == ['vision_model.encoder.layers.1.ls2']
    assert reports['vision_model.'].unexpected == ['vision_model.encoder.layers.0.attn.rel_pos']
    assert reports['mlp1.'].missing == ['mlp1.1.bias'] and reports['mlp1.'].unexpected == []
    assert 'encoder.layers.1.ls2' in caplog.text and 'attn.rel_pos' in caplog.text


def test_shape_mismatch_is_an_error(tmp_path):
    write_fake_release(tmp_path)
    _, sd = read_release_state_dict(tmp_path)
    wrong = InternVisionModel(InternVisionConfig(hidden_size=16, num_attention_heads=2, intermediate_size=48,
                                                 num_hidden_layers=2, image_size=56, patch_size=14))
    with pytest.raises(ValueError, match=r'vision_model\.encoder\.layers\.0\.mlp\.fc1\.weight: .* \(32, 16\) vs model '
                                         r'\(48, 16\)'):
        load_part(wrong, sd, 'vision_model.', source=str(tmp_path))


def test_vision_settings_need_the_llm_width(tmp_path):
    write_fake_release(tmp_path)
    config, _ = read_release_state_dict(tmp_path)
    config['llm_config'].pop('hidden_size')
    with pytest.raises(ValueError, match='llm_config.*hidden_size'):
        vision_settings_from_config(config, source='x/config.json')
