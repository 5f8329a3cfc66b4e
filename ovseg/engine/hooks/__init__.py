"""Hooks registered into ovseg.registry.HOOKS."""
from .seg_visualization_hook import SegVisualizationHook  # noqa: F401
