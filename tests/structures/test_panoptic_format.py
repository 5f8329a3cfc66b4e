"""The panoptic format: rgb2id/id2rgb agree with panopticapi, PNG round trip, dtype contract, clear errors."""
import cv2
import numpy as np
import pytest
import torch
from panopticapi.utils import id2rgb as papi_id2rgb
from panopticapi.utils import rgb2id as papi_rgb2id
from PIL import Image

from ovseg.structures.panoptic_format import (
    IGNORE_INDEX,
    LABEL_DIVISOR,
    MAX_SEGMENT_ID,
    VOID,
    id2rgb,
    read_panoptic_png,
    rgb2id,
    write_panoptic_png,
)


def test_constants():
    assert (VOID, IGNORE_INDEX, LABEL_DIVISOR, MAX_SEGMENT_ID) == (0, 255, 1000, 256**3 - 1)


def test_rgb2id_id2rgb_agree_with_panopticapi_on_random_colours():
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (37, 53, 3), dtype=np.uint8)
    ids = rgb2id(rgb)
    assert ids.dtype == np.uint32
    assert np.array_equal(ids, papi_rgb2id(rgb))
    assert np.array_equal(ids, papi_rgb2id(rgb.astype(np.uint32)))  # panopticapi's PIL path: uint32 input
    back = id2rgb(ids)
    assert back.dtype == np.uint8 and back.shape == rgb.shape and np.array_equal(back, rgb)
    random_ids = rng.integers(0, 1 << 24, (29, 31), dtype=np.int64)
    assert np.array_equal(id2rgb(random_ids), papi_id2rgb(random_ids))
    edge = np.array([[0, 1, 255, 256, 65535, 65536, MAX_SEGMENT_ID, 7001]])
    assert np.array_equal(id2rgb(edge), papi_id2rgb(edge))
    assert np.array_equal(rgb2id(id2rgb(edge)), edge)


@pytest.mark.parametrize('dtype', [np.uint8, np.int16, np.int32, np.uint32, np.int64])
def test_id2rgb_takes_any_integer_dtype_and_tensors(dtype):
    ids = np.array([[0, 200], [100, 3]], dtype=dtype)
    assert np.array_equal(id2rgb(ids)[..., 0], ids.astype(np.int64))
    assert np.array_equal(id2rgb(torch.as_tensor(ids.astype(np.int64))), id2rgb(ids))


def test_rgba_alpha_ignored_like_panopticapi():
    rng = np.random.default_rng(1)
    rgba = rng.integers(0, 256, (4, 6, 4), dtype=np.uint8)
    assert np.array_equal(rgb2id(rgba), papi_rgb2id(rgba))


def test_png_roundtrip_dtype_and_tensor_input(tmp_path):
    rng = np.random.default_rng(2)
    ids = rng.integers(0, 1 << 24, size=(9, 13))
    write_panoptic_png(tmp_path / 'a.png', ids)
    got = read_panoptic_png(tmp_path / 'a.png')
    assert got.dtype == np.uint32 and got.shape == (9, 13) and np.array_equal(got, ids)
    # panopticapi's own decode of our file gives the same ids
    assert np.array_equal(papi_rgb2id(np.array(Image.open(tmp_path / 'a.png'), dtype=np.uint32)), ids)
    write_panoptic_png(str(tmp_path / 'sub' / 'b.png'), torch.as_tensor(ids)[None])  # 1×H×W tensor
    assert np.array_equal(read_panoptic_png(str(tmp_path / 'sub' / 'b.png')), ids)
    rgba = np.concatenate([rng.integers(0, 256, (5, 7, 3)), np.full((5, 7, 1), 77)], -1).astype(np.uint8)
    Image.fromarray(rgba).save(tmp_path / 'rgba.png')
    assert np.array_equal(read_panoptic_png(tmp_path / 'rgba.png'), rgb2id(rgba))
    pal = Image.fromarray(rgba[..., :3]).quantize(8)  # palette PNG: expanded to its colours
    pal.save(tmp_path / 'pal.png')
    assert np.array_equal(read_panoptic_png(tmp_path / 'pal.png'), rgb2id(np.array(pal.convert('RGB'))))


def test_read_errors_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match='panoptic PNG not found: .*missing.png'):
        read_panoptic_png(tmp_path / 'missing.png')
    cv2.imwrite(str(tmp_path / 'gray.png'), np.zeros((4, 5), np.uint8))
    with pytest.raises(ValueError, match=r'gray.png has 1 channel\(s\) \(8-bit grayscale\); expected 8-bit RGB'):
        read_panoptic_png(tmp_path / 'gray.png')
    cv2.imwrite(str(tmp_path / 'deep.png'), np.full((4, 5, 3), 300, np.uint16))
    with pytest.raises(ValueError, match='deep.png is 16-bit .*expected 8-bit RGB'):
        read_panoptic_png(tmp_path / 'deep.png')
    cv2.imwrite(str(tmp_path / 'deep_gray.png'), np.full((4, 5), 300, np.uint16))
    with pytest.raises(ValueError, match='deep_gray.png is 16-bit'):
        read_panoptic_png(tmp_path / 'deep_gray.png')
    (tmp_path / 'junk.png').write_bytes(b'not an image at all')
    with pytest.raises(ValueError, match=r'cannot decode panoptic PNG .*junk.png \(not a PNG\)'):
        read_panoptic_png(tmp_path / 'junk.png')


def test_id_and_colour_errors(tmp_path):
    with pytest.raises(ValueError, match=r'must lie in \[0, 2\*\*24\)'):
        id2rgb(np.array([[1 << 24]]))
    with pytest.raises(ValueError, match=r'must lie in \[0, 2\*\*24\)'):
        write_panoptic_png(tmp_path / 'neg.png', np.array([[-1, 2]]))
    with pytest.raises(ValueError, match='must be integers, got dtype float64'):
        id2rgb(np.zeros((2, 2)))
    with pytest.raises(ValueError, match='must be H×W, got shape'):
        write_panoptic_png(tmp_path / 'x.png', np.zeros((2, 2, 2), np.int64))
    with pytest.raises(ValueError, match='expects an H×W×3 RGB array'):
        rgb2id(np.zeros((2, 2), np.uint8))
    with pytest.raises(ValueError, match=r'channels in \[0, 255\]'):
        rgb2id(np.full((1, 1, 3), 256, np.int32))
