"""InternVL dynamic tiling ("dynamic high resolution") and the tile normalisation Sa2VA feeds its ViT.

The rule (InternVL's ``dynamic_preprocess`` / ``find_closest_aspect_ratio``, used unchanged by Sa2VA):

1. candidate grids: every (cols, rows) with ``min_num <= cols·rows <= max_num``, visited in increasing
   ``cols·rows`` (InternVL builds them as a Python set of int pairs sorted by the product; we build the same
   set the same way, so grids of equal product are visited in the same order);
2. pick the grid whose cols / rows is closest to the image's width / height; on an exact tie with the best so
   far, a later (larger) grid replaces it only if the image area exceeds half the area of that grid at full
   tile resolution (``w·h > 0.5 · size² · cols·rows``) — big images take more tiles, small ones fewer;
3. resize the image to (cols·size, rows·size) (Pillow's default filter: bicubic) and cut it into tiles in
   row-major order; when there is more than one tile and ``use_thumbnail``, append the whole image resized
   to size × size as the last tile.

Each tile is then converted to RGB, resized to size × size with bicubic interpolation (a no-op for tiles),
scaled to [0, 1] and normalised with the ImageNet mean / std (Sa2VA's ``predict_forward`` transform).

Defaults (``min_num=1, max_num=12, image_size=448, use_thumbnail=True``) are the values Sa2VA's
``preparing_for_generation`` sets (``min_dynamic_patch`` / ``max_dynamic_patch`` / ``use_thumbnail`` in the
release ``config.json``); 448 is the InternViT input size.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from PIL import Image
from torch import Tensor

__all__ = ['IMAGENET_MEAN', 'IMAGENET_STD', 'candidate_grids', 'find_closest_aspect_ratio', 'tile_grid',
           'dynamic_preprocess', 'normalize_tiles', 'preprocess_image']

#: torchvision's ImageNet statistics (``T.Normalize`` in InternVL / Sa2VA).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def candidate_grids(min_num: int = 1, max_num: int = 12) -> list[tuple[int, int]]:
    """All (cols, rows) with ``min_num <= cols·rows <= max_num``, ordered by the product as InternVL does."""
    if not 1 <= min_num <= max_num:
        raise ValueError(f'need 1 <= min_num <= max_num, got min_num={min_num}, max_num={max_num}')
    # The same set built by the same insertion sequence as InternVL, so that its iteration order (CPython's, which
    # is not salted for int pairs) and hence the order among grids of equal product, is InternVL's.
    grids = {(i, j) for n in range(min_num, max_num + 1) for i in range(1, n + 1) for j in range(1, n + 1)
             if min_num <= i * j <= max_num}
    return sorted(grids, key=lambda g: g[0] * g[1])  # stable sort


def find_closest_aspect_ratio(aspect_ratio: float, grids: Sequence[tuple[int, int]], width: int, height: int,
                              image_size: int) -> tuple[int, int]:
    """The grid of ``grids`` (in order) closest to ``aspect_ratio`` = width / height, with InternVL's tie rule."""
    best, best_diff = (1, 1), float('inf')
    area = width * height
    for cols, rows in grids:
        diff = abs(aspect_ratio - cols / rows)
        if diff < best_diff:
            best, best_diff = (cols, rows), diff
        elif diff == best_diff and area > 0.5 * image_size * image_size * cols * rows:
            best = (cols, rows)
    return best


def tile_grid(width: int, height: int, min_num: int = 1, max_num: int = 12, image_size: int = 448) \
        -> tuple[int, int]:
    """(cols, rows) chosen for a ``width`` × ``height`` image."""
    if width <= 0 or height <= 0:
        raise ValueError(f'image size must be positive, got {width}x{height}')
    return find_closest_aspect_ratio(width / height, candidate_grids(min_num, max_num), width, height, image_size)


def dynamic_preprocess(image: Image.Image, min_num: int = 1, max_num: int = 12, image_size: int = 448,
                       use_thumbnail: bool = True) -> list[Image.Image]:
    """Cut ``image`` into cols × rows tiles of ``image_size`` (row-major), plus a thumbnail when > 1 tile."""
    width, height = image.size
    cols, rows = tile_grid(width, height, min_num, max_num, image_size)
    resized = image.resize((cols * image_size, rows * image_size))  # Pillow default filter, as InternVL
    tiles = [resized.crop((c * image_size, r * image_size, (c + 1) * image_size, (r + 1) * image_size))
             for r in range(rows) for c in range(cols)]
    if use_thumbnail and len(tiles) != 1:
        tiles.append(image.resize((image_size, image_size)))
    return tiles


def normalize_tiles(tiles: Sequence[Image.Image], image_size: int = 448, mean: Sequence[float] = IMAGENET_MEAN,
                    std: Sequence[float] = IMAGENET_STD) -> Tensor:
    """PIL tiles → float32 (N, 3, image_size, image_size): RGB, bicubic resize if needed, /255, (x − mean) / std."""
    if not tiles:
        raise ValueError('normalize_tiles: no tiles given')
    mean_a = np.asarray(mean, dtype=np.float32).reshape(3, 1, 1)
    std_a = np.asarray(std, dtype=np.float32).reshape(3, 1, 1)
    out = []
    for tile in tiles:
        if tile.mode != 'RGB':
            tile = tile.convert('RGB')
        if tile.size != (image_size, image_size):
            tile = tile.resize((image_size, image_size), Image.Resampling.BICUBIC)
        arr = np.asarray(tile, dtype=np.float32).transpose(2, 0, 1) / 255.0
        out.append(torch.from_numpy((arr - mean_a) / std_a))
    return torch.stack(out)


def preprocess_image(image: Image.Image, min_num: int = 1, max_num: int = 12, image_size: int = 448,
                     use_thumbnail: bool = True) -> tuple[Tensor, tuple[int, int]]:
    """``(pixel_values (N, 3, S, S), (cols, rows))`` for one image, N = cols·rows (+1 thumbnail if > 1 tile).
    The thumbnail, when present, is the last tile (Sa2VA pools ``<vp>`` region prompts on it)."""
    tiles = dynamic_preprocess(image, min_num, max_num, image_size, use_thumbnail)
    return normalize_tiles(tiles, image_size), tile_grid(*image.size, min_num, max_num, image_size)
