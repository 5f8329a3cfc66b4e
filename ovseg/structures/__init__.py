"""Data structures exchanged between datasets, models and metrics, and the panoptic format.

``SegDataSample`` needs mmengine (and torch); it is loaded on first access so that
``import ovseg.structures.panoptic_format`` stays numpy + OpenCV only (evaluation CLIs, converters).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .seg_data_sample import SegDataSample

__all__ = ['SegDataSample']


def __getattr__(name: str) -> Any:
    if name == 'SegDataSample':
        from .seg_data_sample import SegDataSample  # heavy (mmengine, torch): import on first use
        return SegDataSample
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
