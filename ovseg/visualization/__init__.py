"""Visualisation helpers (overlays of panoptic / semantic predictions)."""
from .overlay import default_palette, draw_panoptic, draw_semantic

__all__ = ['default_palette', 'draw_panoptic', 'draw_semantic']
