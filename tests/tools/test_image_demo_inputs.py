"""tools/image_demo.py refuses what it cannot do right and scales to large photos (issue 9, item 10)."""
from __future__ import annotations

import json
import sys

import cv2
import numpy as np
import pytest

from tests.tools.test_image_demo import CONFIG, tiny_checkpoint  # noqa: F401  (module-scoped fixture)


def _demo(repo_root, monkeypatch, argv):
    monkeypatch.chdir(repo_root)
    sys.path.insert(0, str(repo_root / 'tools'))
    import image_demo as demo
    return demo.main([str(a) for a in argv] + ['--device', 'cpu'])


def _write(path, h, w):
    img = np.zeros((h, w, 3), np.uint8)
    img[:h // 2] = (200, 160, 90)
    img[h // 2:] = (60, 150, 60)
    cv2.imwrite(str(path), img)
    return path


def test_no_checkpoint_needs_an_explicit_flag(repo_root, monkeypatch, tmp_path):
    img = _write(tmp_path / 'a.png', 40, 50)
    with pytest.raises(ValueError, match='no --checkpoint.*--random-weights'):
        _demo(repo_root, monkeypatch, [img, '--config', CONFIG, '--out', tmp_path / 'o'])
    res = _demo(repo_root, monkeypatch, [img, '--config', CONFIG, '--out', tmp_path / 'o', '--random-weights'])
    assert len(res) == 1 and 'error' not in res[0]


@pytest.mark.parametrize('argv, message', [
    (['--vocabulary', ''], '--vocabulary is empty'),
    (['--vocabulary', ' ; '], '--vocabulary is empty'),
    (['--vocabulary', 'cat;dog', '--things', 'yes,maybe'], "'maybe' is not a flag"),
    (['--vocabulary', 'cat;dog', '--things', '1'], '--things has 1 flags for 2 classes'),
], ids=['empty', 'separators-only', 'bad-flag', 'count'])
def test_bad_vocabulary_options_are_errors(repo_root, monkeypatch, tmp_path, tiny_checkpoint, argv,  # noqa: F811
                                           message):
    img = _write(tmp_path / 'a.png', 40, 50)
    with pytest.raises(ValueError, match=message):
        _demo(repo_root, monkeypatch, [img, '--config', CONFIG, '--checkpoint', tiny_checkpoint,
                                       '--out', tmp_path / 'o', *argv])


def test_things_accepts_yes_no(repo_root, monkeypatch, tmp_path, tiny_checkpoint):  # noqa: F811
    img = _write(tmp_path / 'a.png', 40, 50)
    res = _demo(repo_root, monkeypatch, [img, '--config', CONFIG, '--checkpoint', tiny_checkpoint, '--out',
                                         tmp_path / 'o', '--vocabulary', 'ball;sky', '--things', 'yes,no'])
    assert all(s['isthing'] == (s['category'] == 'ball') for s in res[0]['segments'])


def test_empty_folder_is_an_error(repo_root, monkeypatch, tmp_path, tiny_checkpoint):  # noqa: F811
    (tmp_path / 'empty').mkdir()
    with pytest.raises(FileNotFoundError, match='no images .* in folder .*empty'):
        _demo(repo_root, monkeypatch, [tmp_path / 'empty', '--config', CONFIG, '--checkpoint', tiny_checkpoint,
                                       '--out', tmp_path / 'o'])


def test_same_stem_inputs_keep_separate_outputs_and_bad_images_are_reported(repo_root, monkeypatch, tmp_path,
                                                                          tiny_checkpoint):  # noqa: F811
    folder = tmp_path / 'in'
    folder.mkdir()
    _write(folder / 'x.png', 40, 50)
    _write(folder / 'x.jpg', 30, 60)
    _write(folder / 'thin.png', 3, 400)  # crashed inside OpenCV's resize before
    out = tmp_path / 'o'
    with pytest.raises(RuntimeError, match='1 of 3 images failed'):
        _demo(repo_root, monkeypatch, [folder, '--config', CONFIG, '--checkpoint', tiny_checkpoint, '--out', out])
    assert json.loads((out / 'x_png.json').read_text())['image'].endswith('x.png')
    assert json.loads((out / 'x_jpg.json').read_text())['image'].endswith('x.jpg')
    assert cv2.imread(str(out / 'x_jpg_panoptic.png')).shape == (30, 60, 3)
    assert not (out / 'thin.json').exists()


def test_large_image_is_post_processed_at_the_model_resolution(repo_root, monkeypatch, tmp_path,
                                                               tiny_checkpoint):  # noqa: F811
    img = _write(tmp_path / 'big.png', 1200, 1500)
    args = [img, '--config', CONFIG, '--checkpoint', tiny_checkpoint, '--vocabulary', 'ball;sky;grass']
    small = _demo(repo_root, monkeypatch, args + ['--out', tmp_path / 'a'])[0]
    full = _demo(repo_root, monkeypatch, args + ['--out', tmp_path / 'b', '--full-res-postprocess'])[0]
    pan = cv2.imread(small['panoptic_png'])
    assert pan.shape == (1200, 1500, 3)  # outputs at the image size
    assert sum(small['semantic_classes'].values()) == sum(full['semantic_classes'].values()) == 1200 * 1500
    # same classes found; the label maps agree except along boundaries (nearest vs bilinear upsampling)
    assert set(small['semantic_classes']) == set(full['semantic_classes'])
    for name, count in full['semantic_classes'].items():
        assert abs(small['semantic_classes'][name] - count) < 0.02 * 1200 * 1500
