"""Broken data is reported, not silently used (issue 9, item 11): truncated images, segments listed in the
JSON but absent from the PNG, duplicate image ids in a panoptic evaluation."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from ovseg.datasets.transforms import LoadImage, LoadPanopticAnnotations, loading
from ovseg.evaluation.functional import PanopticFormatError
from ovseg.evaluation.functional.panoptic_io import pq_compute


def _photo(h=96, w=128) -> np.ndarray:
    rng = np.random.default_rng(0)
    return (rng.random((h, w, 3)) * 255).astype(np.uint8)


@pytest.mark.parametrize('ext', ['.jpg', '.png'])
def test_truncated_image_is_an_error_naming_the_file(tmp_path, ext):
    path = tmp_path / f'photo{ext}'
    cv2.imwrite(str(path), _photo())
    full = LoadImage()(dict(img_path=str(path)))['img']
    data = path.read_bytes()
    path.write_bytes(data[:len(data) * 2 // 3])
    if ext == '.jpg':  # the fault: OpenCV decodes the truncated JPEG, filling the rest with grey
        assert cv2.imread(str(path)) is not None
    with pytest.raises((ValueError, FileNotFoundError), match=f'photo{ext}'):
        LoadImage()(dict(img_path=str(path)))
    assert full.shape == (96, 128, 3)


def test_jpeg_with_padding_after_the_end_marker_still_loads(tmp_path):
    path = tmp_path / 'padded.jpg'
    cv2.imwrite(str(path), _photo())
    path.write_bytes(path.read_bytes() + b'\x00' * 16)
    assert LoadImage()(dict(img_path=str(path)))['img'].shape == (96, 128, 3)


def test_segments_missing_from_the_png_are_counted_and_warned(tmp_path, monkeypatch):
    ids = np.zeros((8, 8), np.int64)
    ids[:4] = 7
    rgb = np.stack([ids % 256, ids // 256 % 256, ids // 65536], -1).astype(np.uint8)
    cv2.imwrite(str(tmp_path / 'p.png'), rgb[..., ::-1])
    messages = []
    monkeypatch.setattr(loading, 'print_log', lambda msg, **kw: messages.append((msg, kw.get('level'))))
    monkeypatch.setattr(loading, '_absent_segments', {'images': 0, 'segments': 0})
    segments = [dict(id=7, category_id=0, iscrowd=0), dict(id=9, category_id=1, iscrowd=0),
                dict(id=11, category_id=1, iscrowd=0)]
    out = LoadPanopticAnnotations()(dict(seg_map_path=str(tmp_path / 'p.png'), segments_info=segments,
                                         img_id=42))
    assert set(np.unique(out['gt_pan_id'])) == {0, 7}
    assert loading._absent_segments == {'images': 1, 'segments': 2}
    (msg, level), = messages
    assert level == 30 and 'lacks 2 segment(s)' in msg and '[9, 11]' in msg and '42' in msg


def test_duplicate_image_ids_in_a_panoptic_evaluation_are_an_error(tmp_path):
    (tmp_path / 'gt').mkdir()
    (tmp_path / 'pred').mkdir()
    cats = [dict(id=1, name='a', isthing=1)]
    gt = dict(categories=cats, annotations=[dict(image_id=1, file_name='a.png', segments_info=[])])
    pred = dict(annotations=[dict(image_id=1, file_name='a.png', segments_info=[]),
                             dict(image_id=1, file_name='b.png', segments_info=[])])
    with pytest.raises(PanopticFormatError, match=r'prediction JSON: image_id 1 appears twice'):
        pq_compute(gt, pred, str(tmp_path / 'gt'), str(tmp_path / 'pred'))
    gt['annotations'].append(dict(image_id=1, file_name='c.png', segments_info=[]))
    with pytest.raises(PanopticFormatError, match=r'ground-truth JSON: image_id 1 appears twice'):
        pq_compute(gt, pred, str(tmp_path / 'gt'), str(tmp_path / 'pred'))
