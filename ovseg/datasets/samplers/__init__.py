"""Samplers registered into ovseg.registry.DATA_SAMPLERS."""
from .resumable_infinite_sampler import ResumableInfiniteSampler

__all__ = ['ResumableInfiniteSampler']
