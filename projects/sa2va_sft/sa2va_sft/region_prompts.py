"""Masks as input (region captioning): Sa2VA's ``<vp>`` region prompts (Osprey-style mask-selected ViT tokens).

As Sa2VA v1 (``datasets/Osprey_Dataset.py``, ``internvl.py::_llm_forward``, HF ``predict_forward``):

* each region mask is resized (nearest) to the token grid of one tile (16×16 for 448² tiles); ``cells[i]`` is the
  number of its True cells;
* the text after the image block reads ``"\\nThere are {n} part regions in the picture: region1<vp>" +
  "<IMG_CONTEXT>" * cells[0] + "</vp>, region2<vp>...</vp>.\\n"``;
* the ``<IMG_CONTEXT>`` slots of region i receive the visual tokens of the last tile (the thumbnail, or the only
  tile) at its True cells, in row-major order.

A region that covers no cell at the grid's nearest sampling (a small mask) would get no token and be invisible:
it keeps the one cell where its area is largest instead (our rule; Sa2VA's code would give it zero tokens).
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from .language import IMG_CONTEXT_TOKEN


def region_cells(masks: Tensor, grid: int) -> Tensor:
    """(n, H, W) bool masks → (n, grid, grid) bool token cells (nearest; an empty result keeps its best cell)."""
    if masks.ndim != 3:
        raise ValueError(f'region masks must be (n_regions, H, W), got {tuple(masks.shape)}')
    m = masks.float()[:, None]
    cells = F.interpolate(m, size=(grid, grid), mode='nearest')[:, 0] > 0.5
    empty = ~cells.flatten(1).any(1)
    if bool(empty.any()):
        if not bool(masks[empty].flatten(1).any(1).all()):
            raise ValueError('a region mask is empty: nothing to describe')
        area = F.adaptive_avg_pool2d(m[empty], grid)[:, 0].flatten(1)
        best = area.argmax(1)
        fixed = torch.zeros_like(area, dtype=torch.bool).scatter(1, best[:, None], True)
        cells[empty] = fixed.view(-1, grid, grid)
    return cells


def region_text(cells: Tensor) -> str:
    """The text that introduces the regions after the image block (with one ``<IMG_CONTEXT>`` per cell)."""
    n = int(cells.shape[0])
    counts = cells.flatten(1).sum(1).tolist()
    regions = ', '.join(f'region{i + 1}<vp>{IMG_CONTEXT_TOKEN * int(c)}</vp>' for i, c in enumerate(counts))
    return f'\nThere are {n} part regions in the picture: {regions}.\n'


def region_tokens(tile_tokens: Tensor, cells: Tensor) -> Tensor:
    """Visual tokens of the regions: ``tile_tokens`` (grid², C) of the last tile picked at each region's cells."""
    grid = cells.shape[-1]
    if tile_tokens.shape[0] != grid * grid:
        raise ValueError(f'{tile_tokens.shape[0]} tile tokens for a {grid}x{grid} grid')
    return torch.cat([tile_tokens[c.flatten()] for c in cells]) if len(cells) else tile_tokens[:0]


def insert_region_text(expanded: str, text: str, image_end: str = '</img>') -> str:
    """Put the region text right after the (last) image block of an expanded prompt."""
    at = expanded.rfind(image_end)
    if at < 0:
        raise ValueError('region prompts need <image> in the text')
    at += len(image_end)
    return expanded[:at] + text + expanded[at:]


def masks_tensor(mask_prompts: Sequence | Tensor) -> Tensor:
    """(n, H, W) bool tensor from an array / list of masks."""
    if isinstance(mask_prompts, Tensor):
        return mask_prompts.bool()
    return torch.as_tensor(np.asarray(mask_prompts)).bool()
