"""Toy synthetic scenes: a real synthetic-real gap ('flat' style) and a cache that refuses other parameters."""
import json

import numpy as np
import pytest
from PIL import Image

from projects.dreammask.dreammask.toy_synthetic import generate_toy_synthetic


def _load(root, i=0):
    rec = json.loads((root / f'scene_{i:05d}.json').read_text())
    img = np.asarray(Image.open(root / rec['real_image'])).astype(np.float64)
    masks = {o['name']: np.asarray(Image.open(root / o['mask_path'])) > 0 for o in rec['objects']}
    return img, masks


def test_flat_style_changes_appearance_not_labels(tmp_path):
    flat = generate_toy_synthetic(tmp_path / 'flat', num_scenes=2, size=64, style='flat')
    toy = generate_toy_synthetic(tmp_path / 'toy', num_scenes=2, size=64, style='toy')
    img_f, masks_f = _load(flat)
    img_t, masks_t = _load(toy)
    assert masks_f.keys() == masks_t.keys() and {'star', 'water'} <= set(masks_f)  # same scene, same labels
    assert all(np.array_equal(masks_f[k], masks_t[k]) for k in masks_f)
    assert np.abs(img_f - img_t).mean() > 15  # another rendering: colour cast, ramp, no textures
    water = masks_f['water']
    # real water ripples row by row; synthetic water is one flat colour (row means vary by noise only)
    rows = [r for r in range(2, 64) if water[r - 2:r + 1].all()]  # full-width water rows, away from the edge
    assert len(rows) > 10
    row_f, row_t = img_f[rows].mean(axis=(1, 2)), img_t[rows].mean(axis=(1, 2))
    assert row_t.std() > 3 * row_f.std()
    # the flat style is noisy where the real painter is clean: pixel-to-pixel differences inside the star
    star = masks_f['star']
    dx_f = np.abs(np.diff(img_f, axis=1))[star[:, 1:] & star[:, :-1]].mean()
    dx_t = np.abs(np.diff(img_t, axis=1))[star[:, 1:] & star[:, :-1]].mean()
    assert dx_f > 2 * dx_t


def test_cache_reuse_refusal_and_legacy_regeneration(tmp_path):
    root = generate_toy_synthetic(tmp_path / 'syn', num_scenes=2, size=32)
    stamp = (root / 'images/real_00000.png').stat().st_mtime_ns
    assert generate_toy_synthetic(root, num_scenes=2, size=32) == root  # same parameters: reused
    assert (root / 'images/real_00000.png').stat().st_mtime_ns == stamp
    with pytest.raises(ValueError, match="other parameters .*style: on disk 'flat' vs requested 'toy'"):
        generate_toy_synthetic(root, num_scenes=2, size=32, style='toy')
    (root / 'meta.json').unlink()  # a copy from before styles existed (version 1): regenerated
    generate_toy_synthetic(root, num_scenes=2, size=32)
    assert json.loads((root / 'meta.json').read_text())['style'] == 'flat'
    (tmp_path / 'foreign').mkdir()
    (tmp_path / 'foreign' / 'x.txt').write_text('mine')
    with pytest.raises(FileExistsError, match='holds no toy synthetic scenes'):
        generate_toy_synthetic(tmp_path / 'foreign', num_scenes=1, size=32)
    with pytest.raises(ValueError, match='style must be one of'):
        generate_toy_synthetic(tmp_path / 'x', style='photo')
