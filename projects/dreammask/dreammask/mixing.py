"""Real + synthetic training data: one dataset wrapper with a shared vocabulary, and a batch-aware sampler.

``RealSyntheticDataset`` concatenates a real panoptic dataset and an ``NSSSceneDataset`` whose names are
mapped onto the real vocabulary (novel names appended), so both speak one label space.
``RealSyntheticMixSampler`` lays out every per-rank batch as ``batch_size - num_synthetic`` real samples
followed by ``num_synthetic`` synthetic ones: each batch that has synthetic objects also has real ones
feeding the memory bank. It is infinite, different per DDP rank, and ``fast_forward`` resumes exactly.
"""
from __future__ import annotations

import itertools
import warnings
from typing import Iterator, Optional, Sized

import torch
from mmengine.dist import get_dist_info, sync_random_seed
from torch.utils.data import Sampler

from ovseg.registry import DATA_SAMPLERS, DATASETS


@DATASETS.register_module()
class RealSyntheticDataset:
    """``real`` samples first (indices ``0..n_real-1``), then ``synthetic`` ones; metainfo of the union.

    Args:
        real: config or dataset of real images (e.g. CocoPanopticDataset / ToyScenesDataset).
        synthetic: config of an ``NSSSceneDataset``; its ``base_vocabulary``/``base_is_thing`` are filled
            from the real dataset so names map onto the real training vocabulary.
    """

    def __init__(self, real, synthetic) -> None:
        self.real = DATASETS.build(real) if isinstance(real, dict) else real
        if isinstance(synthetic, dict):
            synthetic = dict(synthetic)
            synthetic.setdefault('base_vocabulary', self.real.metainfo['class_synonyms'])
            synthetic.setdefault('base_is_thing', self.real.metainfo['is_thing'])
            synthetic = DATASETS.build(synthetic)
        self.synthetic = synthetic
        real_syn = self.real.metainfo['class_synonyms']
        if self.synthetic.metainfo['class_synonyms'][:len(real_syn)] != real_syn:
            raise ValueError('the synthetic dataset was mapped onto a different vocabulary than the real one')
        self._metainfo = self.synthetic.metainfo  # base (= real) classes, then novel synthetic ones
        self.num_real, self.num_synthetic = len(self.real), len(self.synthetic)

    @property
    def metainfo(self) -> dict:
        return dict(self._metainfo)

    def __len__(self) -> int:
        return self.num_real + self.num_synthetic

    def __getitem__(self, idx: int) -> dict:
        if idx < self.num_real:
            return self.real[idx]
        return self.synthetic[idx - self.num_real]


@DATA_SAMPLERS.register_module()
class RealSyntheticMixSampler(Sampler):
    """Infinite index stream, ``num_synthetic`` synthetic samples per batch of ``batch_size`` (or
    ``synthetic_ratio``: the fraction of each batch, rounded; a ratio strictly between 0 and 1 keeps at least
    one real and one synthetic sample per batch).

    ``batch_size`` must equal the dataloader's per-rank batch size. ``num_synthetic == batch_size`` is the
    synthetic-only mode of seed 000's ``train_net_nss.py``: no real sample ever arrives, so the SRA memory
    bank stays empty and ``loss_sra`` is always 0 (a warning says so).
    """

    def __init__(self, dataset: Sized, batch_size: int, num_synthetic: Optional[int] = None, shuffle: bool = True,
                 seed: Optional[int] = None, synthetic_ratio: Optional[float] = None) -> None:
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
        if num_synthetic and dataset.num_synthetic == 0 or num_synthetic < batch_size and dataset.num_real == 0:
            raise ValueError('a requested part (real or synthetic) of the mix has no samples')
        self.rank, self.world_size = get_dist_info()
        self.num_real, self.num_synthetic_samples = dataset.num_real, dataset.num_synthetic
        self.batch_size, self.num_synthetic, self.shuffle = batch_size, num_synthetic, shuffle
        self.seed = sync_random_seed() if seed is None else seed
        self.indices = self._stream()

    def _part(self, size: int, offset: int, salt: int) -> Iterator[int]:
        """This rank's share of an infinite (shuffled) pass over ``size`` items, shifted by ``offset``."""
        def infinite():
            g = torch.Generator()
            g.manual_seed(self.seed + salt)
            while True:
                yield from (torch.randperm(size, generator=g).tolist() if self.shuffle else range(size))
        return (offset + i for i in itertools.islice(infinite(), self.rank, None, self.world_size))

    def _stream(self) -> Iterator[int]:
        real = self._part(self.num_real, 0, 0) if self.num_real else iter(())
        syn = self._part(self.num_synthetic_samples, self.num_real, 1) if self.num_synthetic_samples else iter(())
        n_real = self.batch_size - self.num_synthetic
        while True:
            yield from itertools.islice(real, n_real)
            yield from itertools.islice(syn, self.num_synthetic)

    def __iter__(self) -> Iterator[int]:
        yield from self.indices

    def __len__(self) -> int:
        return self.num_real + self.num_synthetic_samples

    def set_epoch(self, epoch: int) -> None:
        """Infinite stream: nothing to reseed per epoch (kept for DistSamplerSeedHook)."""

    def fast_forward(self, num_indices: int) -> None:
        """Restart this rank's stream and drop its first ``num_indices`` indices (no sample is loaded)."""
        self.indices = self._stream()
        next(itertools.islice(self.indices, num_indices, num_indices), None)
