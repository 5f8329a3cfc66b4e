"""Draw panoptic / semantic predictions over an image (used by tools/demo.py and SegVisualizationHook)."""
from __future__ import annotations

from typing import Sequence

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
    out = img.astype(np.float32).copy()
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
        out[mask] = out[mask] * (1 - alpha) + color * alpha
        ys, xs = np.nonzero(mask)
        labels.append((str(classes[seg['category_id']]), (max(int(xs.mean()) - 10, 0), int(ys.mean()))))
    out = np.ascontiguousarray(out.clip(0, 255).astype(np.uint8))
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
    valid = sem_seg != ignore_index
    out = img.astype(np.float32).copy()
    out[valid] = out[valid] * (1 - alpha) + lut[sem_seg[valid].clip(0, 255)] * alpha
    return out.clip(0, 255).astype(np.uint8)
