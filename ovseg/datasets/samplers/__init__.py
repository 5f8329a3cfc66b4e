"""Samplers registered into ovseg.registry.DATA_SAMPLERS (and the multi-source dataset they lay out)."""
from .multi_source import MultiSourceDataset, MultiSourceSampler
from .resumable_infinite_sampler import ResumableInfiniteSampler

__all__ = ['MultiSourceDataset', 'MultiSourceSampler', 'ResumableInfiniteSampler']
