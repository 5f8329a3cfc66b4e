"""FC-CLIP → ovseg checkpoint converter on state dicts built from the official key lists."""
import importlib.util
import os
import re
from pathlib import Path

import pytest
import torch

from ovseg.models.utils.checkpoint_convert import (
    UnsafeCheckpointError,
    convert_fcclip_state_dict,
    convert_key,
    extract_state_dict,
    safe_load_checkpoint,
)

REF = Path(__file__).resolve().parents[1] / 'data' / 'fcclip_keys'
REPO = Path(__file__).resolve().parents[2]
TOOL = REPO / 'tools' / 'model_converters' / 'fcclip_to_ovseg.py'


def _run_tool(argv, capsys):
    """Run the CLI's ``main`` in-process (a subprocess would re-import torch/open_clip: seconds)."""
    spec = importlib.util.spec_from_file_location('fcclip_to_ovseg', TOOL)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    with pytest.raises(SystemExit) as exit_info:  # through the shared one-line error handler, as `python TOOL`
        mod.run_tool(mod.main, [str(a) for a in argv])
    rc = exit_info.value.code
    out = capsys.readouterr()
    return rc, out.out, out.err


def _small(sd):
    """Every head/decoder key plus a few backbone ones: keeps files small for the end-to-end CLI test."""
    return {k: v for i, (k, v) in enumerate(sd.items()) if not k.startswith('backbone.') or i % 50 == 0
            and v.numel() < 1e6}


def _official(keys_file):
    path = REF / keys_file
    if not path.is_file():
        pytest.skip(f'{path} not available')
    sd = {}
    for line in path.read_text().splitlines():
        if not line or line.startswith('#'):
            continue
        name, shape, dtype = line.split('\t')
        dims = tuple(int(d) for d in re.findall(r'\d+', shape))
        dt = getattr(torch, dtype)
        sd[name] = torch.zeros(dims, dtype=dt)
    return sd


def _expected_target(key):
    if key.startswith('sem_seg_head.predictor.'):
        inner = key[len('sem_seg_head.predictor.'):]
        if inner.startswith(('class_embed.', '_mask_pooling_proj.')) or inner == 'logit_scale':
            return 'transformer_decoder.class_head.' + inner
        return 'transformer_decoder.' + inner
    if key.startswith('sem_seg_head.pixel_decoder.'):
        return 'pixel_decoder.' + key[len('sem_seg_head.pixel_decoder.'):]
    return key


@pytest.mark.parametrize('keys_file,model,n_total,counts', [
    ('fcclip_convnext_large_keys.txt', 'convnext_large', 846,
     dict(backbone=None, pixel_decoder=117, transformer_decoder=173, class_head=11, void_embedding=1)),
    ('fcclip_r50_keys.txt', 'r50', 792,
     dict(backbone=None, pixel_decoder=117, transformer_decoder=173, class_head=11, void_embedding=1)),
])
def test_every_official_key_maps(keys_file, model, n_total, counts):
    sd = _official(keys_file)
    assert len(sd) == n_total
    new_sd, report = convert_fcclip_state_dict(sd, model=model, strict=True)
    assert report['unmatched'] == [] and report['unknown_inner'] == [] and report['shape_errors'] == []
    assert report['dropped'] == ['criterion.empty_weight']
    assert len(new_sd) == n_total - 1
    n_backbone = sum(k.startswith('backbone.') for k in sd)
    counts = dict(counts, backbone=n_backbone)
    assert report['counts'] == counts
    assert sum(counts.values()) == len(new_sd)
    for key, value in sd.items():
        if key == 'criterion.empty_weight':
            continue
        target = _expected_target(key)
        assert new_sd[target] is value  # same tensor: shape and dtype preserved
    assert 'transformer_decoder.class_head.logit_scale' in new_sd
    assert not any(k.startswith('sem_seg_head') for k in new_sd)
    # the official list (model.state_dict()) has the text tower, so nothing is missing here
    assert report['expected_missing'] == []


def test_released_file_without_text_tower_reports_expected_missing():
    sd = _official('fcclip_convnext_large_keys.txt')
    text = ('backbone.clip_model.token_embedding', 'backbone.clip_model.positional_embedding',
            'backbone.clip_model.transformer.', 'backbone.clip_model.ln_final',
            'backbone.clip_model.text_projection', 'backbone.clip_model.logit_scale')
    sd = {k: v for k, v in sd.items() if not k.startswith(text)}
    _, report = convert_fcclip_state_dict(sd, model='convnext_large', strict=True)
    assert len(report['expected_missing']) == 6


def test_unknown_and_mismatch_reported_and_strict_fails():
    sd = _official('fcclip_r50_keys.txt')
    sd['something.else'] = torch.zeros(1)
    sd['sem_seg_head.predictor.new_thing.weight'] = torch.zeros(1)
    new_sd, report = convert_fcclip_state_dict(sd, model='r50')
    assert report['unmatched'] == ['something.else']
    assert report['unknown_inner'] == ['sem_seg_head.predictor.new_thing.weight']
    with pytest.raises(ValueError, match='strict'):
        convert_fcclip_state_dict(sd, strict=True)
    with pytest.raises(ValueError, match='strict'):  # r50 file claimed to be convnext_large (768-d)
        convert_fcclip_state_dict(_official('fcclip_r50_keys.txt'), model='convnext_large', strict=True)
    assert convert_key('criterion.empty_weight') == (None, 'dropped')


def test_cli_end_to_end_pth_and_safetensors(tmp_path, capsys):
    sd = _small(_official('fcclip_r50_keys.txt'))
    n = len(sd)
    src = tmp_path / 'fcclip_r50.pth'
    torch.save({'model': sd, 'iteration': 368750}, src)
    dst = tmp_path / 'out.pth'
    rc, stdout, stderr = _run_tool([src, dst, '--model', 'r50', '--strict'], capsys)
    assert rc == 0, stderr
    assert f'converted {n - 1} / {n}' in stdout
    out = torch.load(dst, weights_only=True)
    assert set(out) == {'state_dict', 'meta'} and len(out['state_dict']) == n - 1
    for k, v in sd.items():
        if k != 'criterion.empty_weight':
            assert out['state_dict'][_expected_target(k)].shape == v.shape
    assert out['meta']['dropped'] == ['criterion.empty_weight']
    # the released models' training vocabulary (COCO panoptic) rides along for the seen/unseen split
    from ovseg.engine.hooks.vocabulary_hook import train_vocabulary_of_checkpoint
    syns, things = train_vocabulary_of_checkpoint(out)
    assert len(syns) == 133 and syns[0][0] == 'person' and sum(things) == 80
    from safetensors.torch import save_file
    st = tmp_path / 'fcclip_r50.safetensors'
    save_file({k: v.contiguous() for k, v in sd.items()}, str(st))
    loaded = extract_state_dict(safe_load_checkpoint(str(st)))
    assert set(loaded) == set(sd)


def test_numpy_arrays_in_detectron2_checkpoint(tmp_path):
    import numpy as np
    src = tmp_path / 'np.pth'
    torch.save({'model': {'void_embedding.weight': np.ones((1, 4), dtype=np.float32)}}, src)
    sd = extract_state_dict(safe_load_checkpoint(str(src)))
    assert torch.equal(sd['void_embedding.weight'], torch.ones(1, 4))


class _Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f'touch {self.marker}',))


def test_malicious_pickle_refused_without_executing(tmp_path, capsys):
    marker = tmp_path / 'pwned'
    src = tmp_path / 'evil.pth'
    torch.save({'model': {'void_embedding.weight': torch.zeros(1, 4)}, 'extra': _Evil(marker)}, src)
    assert not marker.exists()
    with pytest.raises(UnsafeCheckpointError, match='Refusing'):
        safe_load_checkpoint(str(src))
    assert not marker.exists()
    rc, _, stderr = _run_tool([src, tmp_path / 'o.pth'], capsys)
    assert rc == 1 and 'Refusing' in stderr and 'Traceback' not in stderr
    assert not marker.exists() and not (tmp_path / 'o.pth').exists()
