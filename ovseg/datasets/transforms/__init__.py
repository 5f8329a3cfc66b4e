"""Data transforms registered into ``ovseg.registry.TRANSFORMS`` (mmcv ``BaseTransform`` subclasses)."""
from .formatting import PackSegInputs
from .geometric import FixedSizeCrop, RandomFlip, RandomResizeScale, ResizeShortestEdge, resize_nearest
from .loading import LoadImage, LoadPanopticAnnotations, LoadSemSegAnnotations

__all__ = ['LoadImage', 'LoadPanopticAnnotations', 'LoadSemSegAnnotations', 'RandomResizeScale',
           'FixedSizeCrop',
           'RandomFlip', 'ResizeShortestEdge', 'PackSegInputs', 'resize_nearest']
