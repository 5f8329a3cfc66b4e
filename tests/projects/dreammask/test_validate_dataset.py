"""tools/nss/validate_dataset.py catches every bad case of the processed_dataset format, naming file + field."""
import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from projects.dreammask.dreammask.processed_format import SceneFormatError, parse_scene, validate_dataset


def _write_scene(root, idx=0, size=(64, 48), objects=None, **overrides):
    w, h = size
    (root / 'images').mkdir(parents=True, exist_ok=True)
    (root / 'masks').mkdir(exist_ok=True)
    Image.fromarray(np.full((h, w, 3), 90, np.uint8)).save(root / 'images' / f'real_{idx:05d}.png')
    objs = []
    for k, (name, box) in enumerate(objects or [('car', (4, 6, 20, 10)), ('awning', (30, 2, 20, 30))]):
        mask = np.zeros((h, w), np.uint8)
        x, y, bw, bh = box
        mask[y:y + bh, x:x + bw] = 255
        Image.fromarray(mask).save(root / 'masks' / f'scene_{idx:05d}_obj_{k:02d}.png')
        objs.append(dict(index=k, name=name, box=dict(x=x, y=y, w=bw, h=bh),
                         mask_path=f'masks/scene_{idx:05d}_obj_{k:02d}.png', clip_score=0.31,
                         mask_uncertainty=0.1))
    rec = dict(scene_id=f'scene_{idx:05d}', real_image=f'images/real_{idx:05d}.png', canvas_width=w,
               canvas_height=h, objects=objs)
    rec.update(overrides)
    (root / f'scene_{idx:05d}.json').write_text(json.dumps(rec))
    return rec


def _run(root, tmp_path):
    out = tmp_path / 'report.json'
    r = subprocess.run([sys.executable, 'tools/nss/validate_dataset.py', str(root), '--json', str(out)],
                       capture_output=True, text=True, timeout=120)
    return r.returncode, json.loads(out.read_text()), r.stdout


def test_valid_dataset_passes(tmp_path):
    root = tmp_path / 'processed_dataset'
    _write_scene(root, 0)
    _write_scene(root, 1, objects=[('car', (0, 0, 64, 48))])
    code, report, stdout = _run(root, tmp_path)
    assert code == 0, stdout
    assert report == {'scenes': 2, 'objects': 3, 'categories': {'car': 2, 'awning': 1}, 'errors': []}


def _break(root, case):
    """Apply one defect to scene 0; return the field the error must name."""
    path = root / 'scene_00000.json'
    rec = json.loads(path.read_text())
    if case == 'malformed_json':
        path.write_text('{"scene_id": "scene_00000", ')
        return '<json>'
    if case == 'missing_field':
        del rec['canvas_width']
        field = 'canvas_width'
    elif case == 'missing_object_field':
        del rec['objects'][1]['clip_score']
        field = 'objects[1].clip_score'
    elif case == 'missing_image':
        (root / rec['real_image']).unlink()
        return 'real_image'
    elif case == 'unreadable_mask':
        (root / rec['objects'][0]['mask_path']).write_bytes(b'not a png')
        return 'objects[0].mask_path'
    elif case == 'wrong_mask_size':
        Image.fromarray(np.full((10, 10), 255, np.uint8)).save(root / rec['objects'][0]['mask_path'])
        return 'objects[0].mask_path'
    elif case == 'empty_mask':
        Image.fromarray(np.zeros((48, 64), np.uint8)).save(root / rec['objects'][1]['mask_path'])
        return 'objects[1].mask_path'
    elif case == 'box_outside_canvas':
        rec['objects'][0]['box']['x'] = 60
        field = 'objects[0].box'
    elif case == 'score_out_of_range':
        rec['objects'][0]['mask_uncertainty'] = 1.5
        field = 'objects[0].mask_uncertainty'
    elif case == 'duplicate_scene_id':
        _write_scene(root, 1)
        other = root / 'scene_00001.json'
        dup = json.loads(other.read_text())
        dup['scene_id'] = 'scene_00000'
        other.write_text(json.dumps(dup))
        return 'scene_id'
    path.write_text(json.dumps(rec))
    return field


@pytest.mark.parametrize('case', ['malformed_json', 'missing_field', 'missing_object_field', 'missing_image',
                                  'unreadable_mask', 'wrong_mask_size', 'empty_mask', 'box_outside_canvas',
                                  'score_out_of_range', 'duplicate_scene_id'])
def test_each_bad_case_is_reported_with_file_and_field(tmp_path, case):
    root = tmp_path / 'processed_dataset'
    _write_scene(root, 0)
    field = _break(root, case)
    report = validate_dataset(root)
    assert report['errors'], case
    assert any(e['field'] == field for e in report['errors']), report['errors']
    assert all(e['file'] for e in report['errors'])
    if case != 'duplicate_scene_id':
        assert all(e['file'].endswith('scene_00000.json') for e in report['errors'])


def test_cli_exit_code_and_summary_on_errors(tmp_path):
    root = tmp_path / 'processed_dataset'
    _write_scene(root, 0)
    _break(root, 'empty_mask')
    code, report, stdout = _run(root, tmp_path)
    assert code == 1
    assert 'errors: 1' in stdout and 'empty mask' in stdout
    assert report['errors'][0]['field'] == 'objects[1].mask_path'


def test_empty_directory_is_an_error(tmp_path):
    report = validate_dataset(tmp_path)
    assert report['errors'][0]['message'] == 'no scene_*.json files found'


def test_parse_errors_raise_with_file_and_field(tmp_path):
    root = tmp_path / 'p'
    _write_scene(root, 0)
    _break(root, 'missing_field')
    scene, problems = parse_scene(root / 'scene_00000.json')
    assert scene is None
    err = SceneFormatError(problems)
    assert 'scene_00000.json' in str(err) and "'canvas_width'" in str(err)
