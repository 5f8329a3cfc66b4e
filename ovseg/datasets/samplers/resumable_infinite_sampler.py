"""An InfiniteSampler that can jump to a position without loading the samples it skips.

mmengine's IterBasedTrainLoop resumes by calling ``next(dataloader)`` once per finished iteration, which
decodes and augments every skipped sample (hours for a 368k-iteration COCO run). Samplers implementing
``fast_forward(num_indices)`` let ``ResumableIterBasedTrainLoop`` skip in microseconds while producing
exactly the index stream an uninterrupted run would have seen. Each index carries its augmentation seeds
(``ovseg/datasets/sample_seed.py``), so a resumed run also draws the same augmentations.
"""
from __future__ import annotations

import itertools
from collections.abc import Iterator, Sized

import torch
from mmengine.dataset import InfiniteSampler

from ovseg.registry import DATA_SAMPLERS

from ..sample_seed import seed_positions


@DATA_SAMPLERS.register_module()
class ResumableInfiniteSampler(InfiniteSampler):
    """mmengine ``InfiniteSampler`` (same index stream for a given seed) plus ``fast_forward``.

    ``seed_samples`` (default): yield :class:`~ovseg.datasets.sample_seed.SeededIndex` indices whose
    augmentation seeds derive from (``seed``, global stream position).
    """

    def __init__(self, dataset: Sized, shuffle: bool = True, seed: int | None = None,
                 seed_samples: bool = True) -> None:
        self.seed_samples = seed_samples
        super().__init__(dataset, shuffle=shuffle, seed=seed)
        if self.size == 0:
            raise ValueError(f'{type(dataset).__name__} is empty: nothing to sample for training')

    def _indices_of_rank(self, start: int = 0) -> Iterator[int]:
        indices = itertools.islice(self._infinite_indices(), self.rank + start * self.world_size, None,
                                   self.world_size)
        if not self.seed_samples:
            return indices
        return seed_positions(indices, self.seed, start, self.rank, self.world_size)

    def _infinite_indices(self) -> Iterator[int]:
        g = torch.Generator()
        g.manual_seed(self.seed)
        while True:
            if self.shuffle:
                yield from torch.randperm(self.size, generator=g).tolist()
            else:
                yield from range(self.size)

    def fast_forward(self, num_indices: int) -> None:
        """Restart this rank's stream and drop its first ``num_indices`` indices (none is loaded)."""
        self.indices = self._indices_of_rank(start=num_indices)
