"""Scene files are untrusted input (issue 9, items 7 and 12): paths may not leave the dataset root, and broken
text, absurd nesting or a decompression-bomb header are reported as {file, field, message} errors, exit 1."""
from __future__ import annotations

import importlib.util
import json
import struct
import zlib

import pytest
from mmengine.registry import init_default_scope

from projects.dreammask.dreammask.nss_scene_dataset import NSSSceneDataset
from projects.dreammask.dreammask.processed_format import SceneFormatError, validate_dataset
from tests.projects.dreammask.test_validate_dataset import _write_scene


def _validate_cli(root, repo_root, capsys, *extra):
    """tools/nss/validate_dataset.py in-process, through the shared CLI wrapper: (exit code, output)."""
    spec = importlib.util.spec_from_file_location('validate_dataset', repo_root / 'tools/nss/validate_dataset.py')
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    with pytest.raises(SystemExit) as exit_info:
        tool.run_tool(tool.main, [str(root), *[str(e) for e in extra]])
    out = capsys.readouterr()
    return exit_info.value.code, out.out + out.err


def _escape(root, outside):
    """Point scene 0's first mask at a real file outside the root, and its image at an absolute path."""
    path = root / 'scene_00000.json'
    rec = json.loads(path.read_text())
    (outside / 'secret.png').write_bytes((root / rec['objects'][0]['mask_path']).read_bytes())
    rec['objects'][0]['mask_path'] = '../outside/secret.png'
    rec['real_image'] = str(root / rec['real_image'])
    path.write_text(json.dumps(rec))


def test_paths_leaving_the_root_are_refused_by_validator_and_dataset(tmp_path, repo_root, capsys):
    root, outside = tmp_path / 'processed_dataset', tmp_path / 'outside'
    outside.mkdir()
    _write_scene(root, 0)
    _escape(root, outside)
    errors = {e['field']: e['message'] for e in validate_dataset(root)['errors']}
    assert set(errors) == {'real_image', 'objects[0].mask_path'}
    assert 'is absolute' in errors['real_image'] and 'leaves the dataset root' in errors['objects[0].mask_path']
    assert validate_dataset(root, allow_outside_root=True)['errors'] == []  # the explicit option
    code, out = _validate_cli(root, repo_root, capsys)
    assert code == 1 and 'leaves the dataset root' in out
    assert _validate_cli(root, repo_root, capsys, '--allow-outside-root')[0] == 0

    init_default_scope('ovseg')
    with pytest.raises(SceneFormatError, match="field 'real_image'.*is absolute"):
        NSSSceneDataset(data_root=str(root), pipeline=[])
    ds = NSSSceneDataset(data_root=str(root), pipeline=[], allow_outside_root=True)
    assert ds.get_data_info(0)['nss_objects'][0]['mask_path'].endswith('outside/secret.png')


def _png_header_only(width: int, height: int) -> bytes:
    def chunk(kind, data):
        return struct.pack('>I', len(data)) + kind + data + struct.pack('>I', zlib.crc32(kind + data))
    ihdr = struct.pack('>IIBBBBB', width, height, 8, 2, 0, 0, 0)
    return b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', ihdr) + chunk(b'IDAT', zlib.compress(b'')) + chunk(b'IEND', b'')


def test_hostile_files_are_reported_not_crashed_on(tmp_path, repo_root, capsys):
    root = tmp_path / 'processed_dataset'
    for i in range(4):
        _write_scene(root, i)
    (root / 'scene_00001.json').write_bytes(b'{"scene_id": "scene_00001", "x": "\xff\xfe"}')
    (root / 'scene_00002.json').write_text('[' * 200000 + ']' * 200000)
    (root / 'images' / 'real_00003.png').write_bytes(_png_header_only(40000, 40000))
    code, out = _validate_cli(root, repo_root, capsys, '--json', tmp_path / 'r.json')
    assert code == 1 and 'Traceback' not in out
    errors = {(e['file'].rsplit('/', 1)[-1], e['field']): e['message']
              for e in json.loads((tmp_path / 'r.json').read_text())['errors']}
    assert 'not UTF-8' in errors[('scene_00001.json', '<file>')]
    assert 'nested too deeply' in errors[('scene_00002.json', '<json>')]
    assert 'decompression bomb' in errors[('scene_00003.json', 'real_image')].lower()
    assert len(errors) == 3  # scene 0 is fine
