"""Every checkpoint load is weights-only, even with TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1, and a file that is not a
checkpoint says what it is (issue 9, items 5 and 9)."""
from __future__ import annotations

import pytest
import torch
from mmengine.config import Config
from mmengine.runner import load_checkpoint as mmengine_load_checkpoint
from torch import nn

import ovseg.registry  # noqa: F401  (allow-list + weights-only loaders)
from ovseg.engine.checkpoint_files import load_model_weights
from ovseg.models.utils.checkpoint_convert import convert_checkpoint_file, safe_load_checkpoint
from ovseg.registry import RUNNERS
from ovseg.utils.checkpoint_io import CheckpointFormatError, UnsafeCheckpointError, load_checkpoint_file

CFG = 'tests/helpers/toy_regression.py'


class _Exploit:
    """Unpickling this object writes a marker file (what a malicious checkpoint would do)."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (exec, (f"open({self.marker!r}, 'w').write('pwned')",))


@pytest.fixture()
def evil(tmp_path, monkeypatch):
    monkeypatch.setenv('TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD', '1')  # torch's default is switched off
    marker = tmp_path / 'pwned'
    path = tmp_path / 'evil.pth'
    torch.save({'state_dict': {'linear.weight': torch.zeros(1, 4), 'linear.bias': torch.zeros(1)},
                'meta': {'iter': 5}, 'x': _Exploit(marker)}, path)
    return path, marker


def test_the_exploit_is_real_with_a_default_torch_load(evil):
    path, marker = evil
    torch.load(path, map_location='cpu')  # no weights_only argument: the variable turns safe loading off
    assert marker.read_text() == 'pwned'


def test_ovseg_loaders_refuse_it(evil):
    path, marker = evil
    with pytest.raises(UnsafeCheckpointError, match='Refusing to load .*evil.pth'):
        load_checkpoint_file(path)
    with pytest.raises(UnsafeCheckpointError):  # mmengine's own entry (init_cfg 'Pretrained', scripts)
        mmengine_load_checkpoint(nn.Linear(4, 1), str(path))
    with pytest.raises(UnsafeCheckpointError):  # tools/image_demo.py
        load_model_weights(nn.Linear(4, 1), str(path), warn=print)
    with pytest.raises(UnsafeCheckpointError):  # the FC-CLIP converter
        safe_load_checkpoint(str(path))
    assert not marker.exists()


@pytest.mark.parametrize('resume', [False, True], ids=['load_from', 'resume'])
def test_runner_refuses_it(evil, tmp_path, repo_root, resume):
    """--resume PATH, load_from and tools/test.py (load_from) go through OVSegRunner.load_checkpoint."""
    path, marker = evil
    cfg = Config.fromfile(str(repo_root / CFG))
    cfg.merge_from_dict(dict(work_dir=str(tmp_path / 'w'), load_from=str(path), resume=resume,
                             experiment_name=f'evil_{resume}'))
    runner = RUNNERS.build(cfg)
    with pytest.raises(UnsafeCheckpointError):
        runner.train() if resume else runner.test()
    assert not marker.exists()


@pytest.mark.parametrize('content, message', [
    (b'', r'empty \(0 bytes\)'),
    (b'<html><body>404 Not Found</body></html>\n', r"is a text file .* starts with '<html><body>404"),
    (bytes(range(7, 250)), r'not a PyTorch checkpoint \(243 bytes starting with 07 08'),
], ids=['empty', 'text', 'random'])
def test_non_checkpoints_get_an_accurate_message(tmp_path, content, message):
    path = tmp_path / 'model.pth'
    path.write_bytes(content)
    with pytest.raises(CheckpointFormatError, match=message):
        load_checkpoint_file(path)


def test_truncated_checkpoint_is_named_as_such(tmp_path):
    path = tmp_path / 'model.pth'
    torch.save({'state_dict': {'w': torch.zeros(1000)}}, path)
    path.write_bytes(path.read_bytes()[:2000])
    with pytest.raises(CheckpointFormatError, match='truncated or corrupt'):
        load_checkpoint_file(path)
    with pytest.raises(FileNotFoundError, match='checkpoint not found'):
        load_checkpoint_file(tmp_path / 'missing.pth')


def test_converter_writes_nothing_for_a_foreign_checkpoint(tmp_path):
    src, dst = tmp_path / 'resnet.pth', tmp_path / 'out.pth'
    torch.save({'state_dict': {'conv1.weight': torch.zeros(2, 3, 1, 1), 'fc.weight': torch.zeros(2, 2)}}, src)
    with pytest.raises(ValueError, match="0 of 2 tensors match FC-CLIP's names"):
        convert_checkpoint_file(str(src), str(dst))
    torch.save({'model': {'void_embedding.weight': torch.zeros(1, 4)}}, src)  # one FC-CLIP key only
    with pytest.raises(ValueError, match='no backbone, pixel_decoder, transformer_decoder, class_head tensors'):
        convert_checkpoint_file(str(src), str(dst))
    assert not dst.exists()
    convert_checkpoint_file(str(src), str(dst), allow_partial=True)
    assert dst.is_file()


def test_evaluating_without_weights_warns_loudly(tmp_path, repo_root):
    cfg = Config.fromfile(str(repo_root / CFG))
    cfg.merge_from_dict(dict(work_dir=str(tmp_path / 'w'), experiment_name='noweights'))
    RUNNERS.build(cfg).test()
    log = ''.join(p.read_text() for p in (tmp_path / 'w').glob('*/*.log'))
    assert 'EVALUATING A MODEL WITH NO LOADED CHECKPOINT' in log


def test_weights_only_also_when_the_variable_is_unset(tmp_path, monkeypatch):
    monkeypatch.delenv('TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD', raising=False)
    path = tmp_path / 'ok.pth'
    torch.save({'state_dict': {'w': torch.ones(2)}, 'meta': {'n': 1}}, path)
    assert torch.equal(load_checkpoint_file(path)['state_dict']['w'], torch.ones(2))
