"""Segmentors (mmengine BaseModels): FC-CLIP."""
from .fcclip import DEFAULT_TEST_CFG, FCCLIP

__all__ = ['FCCLIP', 'DEFAULT_TEST_CFG']
