"""Small helpers shared by the datasets, transforms, generators and converters.

Kept dependency-free (numpy only) so converters and the ToyScenes generator can use them without mmengine.
"""
from __future__ import annotations

import numpy as np

VOID = 0  # panoptic segment id of unlabelled pixels (panopticapi convention)
IGNORE_INDEX = 255  # semantic label of unlabelled pixels (8-bit label maps)
IGNORE_INDEX_16BIT = 65535  # ... of 16-bit label maps whose classes include 255 (A-847, PC-459)
LABEL_DIVISOR = 1000  # panoptic id = category * LABEL_DIVISOR + instance (predictions, Cityscapes)


def rgb2id(color: np.ndarray) -> np.ndarray:
    """Panoptic PNG colours (H×W×3, RGB) → segment ids ``R + 256·G + 256²·B`` as int64 (panopticapi)."""
    if color.ndim != 3 or color.shape[2] != 3:
        raise ValueError(f'rgb2id expects an H×W×3 array, got shape {color.shape}')
    color = color.astype(np.int64)
    return color[..., 0] + 256 * color[..., 1] + 256 * 256 * color[..., 2]


def id2rgb(id_map: np.ndarray) -> np.ndarray:
    """Segment ids (H×W, < 2**24) → uint8 RGB colours; inverse of :func:`rgb2id`."""
    id_map = np.asarray(id_map, dtype=np.int64)
    if id_map.size and (id_map.min() < 0 or id_map.max() >= 256 ** 3):
        raise ValueError('panoptic segment ids must lie in [0, 2**24) to be stored as RGB')
    rgb = np.empty(id_map.shape + (3,), dtype=np.uint8)
    for c in range(3):
        rgb[..., c] = id_map % 256
        id_map = id_map // 256
    return rgb


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
