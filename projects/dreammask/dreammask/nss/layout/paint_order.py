"""Back-to-front paint order of a scene's objects, shared by the renderer, the layout drawing and the loader.

LLM layouts list objects in any order, so painting them as listed lets a large background box (a table, a
lawn) that comes after the objects on it erase them — from the image, from the masks, from the targets.
``'area'`` paints larger objects first, i.e. behind smaller ones; objects of equal area keep their listed
order. ``'layout'`` paints as listed, for generators that already order objects back to front (the
rule-based generator: background, then far to near, supporters before what they support).
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

PAINT_ORDERS = ('area', 'layout')


def check_paint_order(mode: str) -> str:
    if mode not in PAINT_ORDERS:
        raise ValueError(f'paint_order must be one of {PAINT_ORDERS}, got {mode!r}')
    return mode


def paint_order(areas: Sequence[float], mode: str = 'area') -> list[int]:
    """Object indices in painting order (first = furthest back) for objects of the given ``areas``."""
    check_paint_order(mode)
    if mode == 'layout':
        return list(range(len(areas)))
    return [int(i) for i in np.argsort(-np.asarray(areas, dtype=np.float64), kind='stable')]
