"""Draw panoptic / semantic predictions over an image (used by tools/image_demo.py and SegVisualizationHook)."""
from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from ovseg.structures.panoptic_format import IGNORE_INDEX, VOID


def default_palette(num_classes: int, seed: int = 7) -> list[tuple[int, int, int]]:
    """Deterministic, well-spread colours for datasets that ship no palette."""
    rng = np.random.RandomState(seed)
    return [tuple(int(c) for c in rng.randint(40, 256, size=3)) for _ in range(num_classes)]


def draw_panoptic(img: np.ndarray, pan_seg: np.ndarray, segments_info: Sequence[dict],
                  classes: Sequence[str], palette: Sequence[Sequence[int]] | None = None,
                  alpha: float = 0.55, with_labels: bool = True) -> np.ndarray:
    """Blend one colour per segment (things get jittered class colours) and write class names.

    Args:
        img: H×W×3 uint8 RGB image.
        pan_seg: H×W segment-id map, 0 = VOID (left undrawn).
        segments_info: dicts with ``id`` and ``category_id`` (contiguous) and optional ``isthing``.
    """
    if img.shape[:2] != pan_seg.shape:
        raise ValueError(f'image {img.shape[:2]} and panoptic map {pan_seg.shape} differ in size')
    palette = palette or default_palette(len(classes))
    # Segments are disjoint, so each pixel is blended at most once: blending into a uint8 copy segment by
    # segment gives the same bytes as a float32 canvas, at a quarter of the memory (large photos in the demo).
    out = np.array(img, dtype=np.uint8, copy=True)
    rng = np.random.RandomState(0)
    labels = []
    for seg in segments_info:
        if seg['id'] == VOID:
            continue
        mask = pan_seg == seg['id']
        if not mask.any():
            continue
        color = np.array(palette[seg['category_id']], dtype=np.float32)
        if seg.get('isthing', False):
            color = np.clip(color + rng.randint(-40, 41, size=3), 0, 255)
        blended = (out[mask].astype(np.float32) * (1 - alpha) + color * alpha).astype(np.float32)
        out[mask] = blended.clip(0, 255).astype(np.uint8)
        rows, cols = mask.sum(1), mask.sum(0)  # centroid from projections, not from H×W coordinate arrays
        cy, cx = rows @ np.arange(len(rows)) / rows.sum(), cols @ np.arange(len(cols)) / cols.sum()
        labels.append((str(classes[seg['category_id']]), (max(int(cx) - 10, 0), int(cy))))
    out = np.ascontiguousarray(out)
    if with_labels:  # OpenCV draws text on 8-bit images only
        for text, org in labels:
            cv2.putText(out, text, org, cv2.FONT_HERSHEY_SIMPLEX, 0.35, (255, 255, 255), 1, cv2.LINE_AA)
    return out


def draw_semantic(img: np.ndarray, sem_seg: np.ndarray, palette: Sequence[Sequence[int]],
                  alpha: float = 0.55, ignore_index: int = IGNORE_INDEX) -> np.ndarray:
    """Blend a colour per class label; ``ignore_index`` pixels are left as they are."""
    if img.shape[:2] != sem_seg.shape:
        raise ValueError(f'image {img.shape[:2]} and label map {sem_seg.shape} differ in size')
    lut = np.zeros((256, 3), dtype=np.float32)
    lut[:len(palette)] = np.asarray(palette, dtype=np.float32)[:256]
    out = np.empty(img.shape, dtype=np.uint8)
    for y in range(0, img.shape[0], 512):  # per-pixel blend, in bands: float32 copies of a band only
        band = img[y:y + 512].astype(np.float32)
        sem = sem_seg[y:y + 512]
        valid = sem != ignore_index
        band[valid] = band[valid] * (1 - alpha) + lut[sem[valid].clip(0, 255)] * alpha
        out[y:y + 512] = band.clip(0, 255).astype(np.uint8)
    return out
