"""Overlays: colours land on the right segments, VOID stays untouched, labels draw on 8-bit images."""
import numpy as np
import pytest

from ovseg.visualization import draw_panoptic, draw_semantic


def test_draw_panoptic_blends_segments_and_keeps_void():
    img = np.full((32, 32, 3), 100, np.uint8)
    pan = np.zeros((32, 32), np.int64)
    pan[:16] = 5
    out = draw_panoptic(img, pan, [dict(id=5, category_id=1, isthing=False)], ['a', 'b'],
                        palette=[(0, 0, 0), (200, 0, 0)], alpha=0.5, with_labels=True)
    assert out.dtype == np.uint8 and out.shape == img.shape
    assert (out[20:] == 100).all()  # VOID rows untouched
    assert out[2, 2, 2] == 50 and out[2, 2, 1] == 50  # blended with red (text is drawn near the centre)


def test_draw_semantic_ignores_255_and_checks_size():
    img = np.zeros((4, 4, 3), np.uint8)
    sem = np.full((4, 4), 255, np.int64)
    sem[0, 0] = 1
    out = draw_semantic(img, sem, [(0, 0, 0), (0, 0, 255)], alpha=1.0)
    assert tuple(out[0, 0]) == (0, 0, 255) and out[1:].sum() == 0
    with pytest.raises(ValueError, match='differ in size'):
        draw_semantic(img, sem[:2], [(0, 0, 0)])
