"""The overlays blend into uint8 (panoptic, segment by segment) and in row bands (semantic) to keep large
photos cheap; the bytes must equal a float32-canvas blend of the whole image (the previous implementation)."""
import numpy as np

from ovseg.visualization import draw_panoptic, draw_semantic


def _float_canvas_panoptic(img, pan, segments, palette, alpha):
    out = img.astype(np.float32).copy()
    rng = np.random.RandomState(0)
    for seg in segments:
        mask = pan == seg['id']
        if not mask.any():
            continue
        color = np.array(palette[seg['category_id']], dtype=np.float32)
        if seg.get('isthing', False):
            color = np.clip(color + rng.randint(-40, 41, size=3), 0, 255)
        out[mask] = out[mask] * (1 - alpha) + color * alpha
    return out.clip(0, 255).astype(np.uint8)


def _float_canvas_semantic(img, sem, palette, alpha, ignore=255):
    lut = np.zeros((256, 3), dtype=np.float32)
    lut[:len(palette)] = np.asarray(palette, dtype=np.float32)
    out = img.astype(np.float32).copy()
    valid = sem != ignore
    out[valid] = out[valid] * (1 - alpha) + lut[sem[valid].clip(0, 255)] * alpha
    return out.clip(0, 255).astype(np.uint8)


def test_overlays_equal_a_float32_canvas_blend():
    rng = np.random.default_rng(0)
    for _ in range(8):
        h, w = (int(v) for v in rng.integers(5, 700, 2))
        img = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        pan = rng.integers(0, 6, (h, w))
        pan[:h // 3] = 3
        segs = [dict(id=i, category_id=int(rng.integers(0, 4)), isthing=bool(i % 2)) for i in range(1, 7)]
        palette = [tuple(int(c) for c in rng.integers(0, 256, 3)) for _ in range(5)]
        alpha = float(rng.random())
        got = draw_panoptic(img, pan, segs, list('abcd'), palette, alpha=alpha, with_labels=False)
        assert np.array_equal(got, _float_canvas_panoptic(img, pan, segs, palette, alpha))
        sem = rng.integers(0, 5, (h, w))
        sem[rng.random((h, w)) < 0.2] = 255
        assert np.array_equal(draw_semantic(img, sem, palette, alpha), _float_canvas_semantic(img, sem, palette, alpha))
