"""Utilities: torch/mmengine compatibility, distributed set-up, io helpers."""
from .torch_compat import allow_mmengine_checkpoints, mmengine_safe_globals

__all__ = ['allow_mmengine_checkpoints', 'mmengine_safe_globals']
