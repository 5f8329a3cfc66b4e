"""Small dataset helpers shared by the datasets, transforms, generators and converters (palette, boxes,
panoptic → semantic). numpy only, so converters and the ToyScenes generator use them without mmengine; the
panoptic format itself (``rgb2id``, ``VOID``, ``IGNORE_INDEX``, ...) is in ``ovseg/structures/panoptic_format.py``.
"""
from __future__ import annotations

import numpy as np

from ovseg.structures.panoptic_format import IGNORE_INDEX


def make_palette(num_classes: int, seed: int = 0) -> list[tuple[int, int, int]]:
    """Deterministic, reasonably distinct RGB colours for datasets without official ones."""
    rng = np.random.default_rng(seed)
    colors = rng.integers(32, 256, size=(num_classes, 3))
    return [tuple(int(v) for v in c) for c in colors]


def bbox_of_mask(mask: np.ndarray) -> list[int]:
    """COCO ``[x, y, w, h]`` box of a boolean mask (zeros for an empty mask)."""
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        return [0, 0, 0, 0]
    x0, y0 = int(xs.min()), int(ys.min())
    return [x0, y0, int(xs.max()) - x0 + 1, int(ys.max()) - y0 + 1]


def segments_to_semantic(pan_id: np.ndarray, segments_info: list[dict], category_key: str = 'category_id',
                         ignore_index: int = IGNORE_INDEX,
                         cat_map: dict[int, int] | None = None) -> np.ndarray:
    """Panoptic id map → semantic map (int64), ``ignore_index`` for VOID and ids without a segment.

    ``cat_map`` optionally maps the segments' category ids (e.g. dataset ids → contiguous). Crowd segments
    keep their category (as detectron2's COCO semantic conversion does).
    """
    ids, inverse = np.unique(pan_id, return_inverse=True)
    lut = np.full(len(ids), ignore_index, dtype=np.int64)
    seg_cat = {int(s['id']): int(s[category_key]) for s in segments_info}
    for i, sid in enumerate(ids.tolist()):
        if sid in seg_cat:
            cat = seg_cat[sid]
            lut[i] = cat_map[cat] if cat_map is not None else cat
    return lut[inverse.reshape(pan_id.shape)]
