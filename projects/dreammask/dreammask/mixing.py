"""Real + synthetic training data: DreamMask's use of the core multi-source dataset and sampler.

``RealSyntheticDataset`` is a two-source ``MultiSourceDataset`` (``real`` first, then ``synthetic``) whose
synthetic names are mapped onto the real vocabulary (novel names appended), so both speak one label space.
``RealSyntheticMixSampler`` is a ``MultiSourceSampler`` with counts ``[batch_size - num_synthetic,
num_synthetic]``: each batch that has synthetic objects also has real ones feeding the memory bank. The index
stream is the one this module produced before the core sampler existed (same seeds per source, same
layout), so DreamMask runs and their toy results are unchanged.
"""
from __future__ import annotations

import warnings
from collections.abc import Sized
from typing import Any

from mmengine.dist import get_dist_info

from ovseg.datasets.samplers import MultiSourceDataset, MultiSourceSampler
from ovseg.registry import DATA_SAMPLERS, DATASETS


@DATASETS.register_module()
class RealSyntheticDataset(MultiSourceDataset):
    """``real`` samples first (indices ``0..n_real-1``), then ``synthetic`` ones; metainfo of the union.

    Args:
        real: config or dataset of real images (e.g. CocoPanopticDataset / ToyScenesDataset).
        synthetic: config of an ``NSSSceneDataset``; its ``base_vocabulary``/``base_is_thing`` are filled
            from the real dataset so names map onto the real training vocabulary.
    """

    def __init__(self, real: Any, synthetic: Any) -> None:
        real = DATASETS.build(real) if isinstance(real, dict) else real
        if isinstance(synthetic, dict):
            synthetic = dict(synthetic)
            synthetic.setdefault('base_vocabulary', real.metainfo['class_synonyms'])
            synthetic.setdefault('base_is_thing', real.metainfo['is_thing'])
            synthetic = DATASETS.build(synthetic)
        real_syn = real.metainfo['class_synonyms']
        if synthetic.metainfo['class_synonyms'][:len(real_syn)] != real_syn:
            raise ValueError('the synthetic dataset was mapped onto a different vocabulary than the real one')
        # the synthetic metainfo lists the base (= real) classes, then the novel synthetic ones
        super().__init__(dict(real=real, synthetic=synthetic), metainfo='synthetic')
        self.real, self.synthetic = real, synthetic
        self.num_real, self.num_synthetic = self.sizes


@DATA_SAMPLERS.register_module()
class RealSyntheticMixSampler(MultiSourceSampler):
    """Infinite index stream, ``num_synthetic`` synthetic samples per batch of ``batch_size`` (or
    ``synthetic_ratio``: the fraction of each batch, rounded; a ratio strictly between 0 and 1 keeps at least
    one real and one synthetic sample per batch).

    ``batch_size`` must equal the dataloader's per-rank batch size. ``num_synthetic == batch_size`` is the
    synthetic-only mode of seed 000's ``train_net_nss.py``: no real sample ever arrives, so the SRA memory
    bank stays empty and ``loss_sra`` is always 0 (a warning says so).
    """

    def __init__(self, dataset: Sized, batch_size: int, num_synthetic: int | None = None, shuffle: bool = True,
                 seed: int | None = None, synthetic_ratio: float | None = None) -> None:
        if (num_synthetic is None) == (synthetic_ratio is None):
            raise ValueError('give exactly one of num_synthetic (per batch) and synthetic_ratio (fraction)')
        if synthetic_ratio is not None:
            if not 0.0 <= synthetic_ratio <= 1.0:
                raise ValueError(f'synthetic_ratio must be in [0, 1], got {synthetic_ratio}')
            num_synthetic = int(round(synthetic_ratio * batch_size))
            if 0 < synthetic_ratio < 1:  # a fractional ratio keeps at least one real and one synthetic sample
                num_synthetic = min(max(num_synthetic, 1), batch_size - 1) if batch_size > 1 else num_synthetic
        if not hasattr(dataset, 'num_real'):
            raise TypeError('RealSyntheticMixSampler needs a RealSyntheticDataset (num_real / num_synthetic)')
        if not 0 <= num_synthetic <= batch_size:
            raise ValueError(f'num_synthetic must be in [0, batch_size={batch_size}], got {num_synthetic}')
        if num_synthetic == batch_size:
            warnings.warn('synthetic-only batches: the real-feature bank never fills, SRA contributes nothing')
        rank, world_size = get_dist_info()
        super().__init__(dataset, batch_size, counts=[batch_size - num_synthetic, num_synthetic],
                         shuffle=shuffle, seed=seed, rank=rank, world_size=world_size)
        self.num_synthetic = num_synthetic
