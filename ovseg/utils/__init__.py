"""Utilities: torch/mmengine compatibility, distributed set-up and helpers, io helpers."""
from .dist import all_gather_rows, all_reduce_mean, broadcast_object, get_rank, get_world_size, is_distributed
from .torch_compat import allow_mmengine_checkpoints, mmengine_safe_globals

__all__ = ['allow_mmengine_checkpoints', 'mmengine_safe_globals', 'all_gather_rows', 'all_reduce_mean',
           'broadcast_object', 'get_rank', 'get_world_size', 'is_distributed']
