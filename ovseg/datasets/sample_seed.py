"""Per-sample augmentation seeds: a sample's random draws depend on its stream position, nothing else.

mmengine seeds each dataloader worker once (``worker_init_fn(worker_id, num_workers, rank, seed)``) and
persistent workers keep drawing from that stream, so which augmentation a sample gets depends on which
worker decoded it and on everything that worker decoded before. A resumed run restarts the workers, so its
samples got different flips / LSJ scales / crops than the uninterrupted run's (the resume was not exact).

Here a resumable sampler yields :class:`SeededIndex` — an ``int`` that also carries the sample's seeds,
derived from (sampler seed, global stream position) — and :class:`SeededSampleMixin` runs the dataset's
``__getitem__`` under those seeds (Python, NumPy and torch-CPU), restoring the process's own streams after.
The draws are then the same for any number of workers, in the main process or a worker, before or after a
resume. Datasets without the mixin accept a ``SeededIndex`` as the plain index it also is.
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager, nullcontext
from typing import Any

from ovseg.utils.random_state import derive_sample_seeds, seeded_random_state

__all__ = ['SeededIndex', 'SeededSampleMixin', 'seed_positions', 'sample_random_state']


class SeededIndex(int):
    """A dataset index (the ``int`` value) carrying ``sample_seeds`` for the sample's random draws."""

    sample_seeds: tuple[int, int, int]

    def __new__(cls, index: int, sample_seeds: tuple[int, int, int]) -> SeededIndex:
        obj = super().__new__(cls, index)
        obj.sample_seeds = tuple(sample_seeds)
        return obj

    def __reduce__(self) -> tuple:  # travels to dataloader workers through pickling
        return (SeededIndex, (int(self), self.sample_seeds))

    def __repr__(self) -> str:
        return f'SeededIndex({int(self)})'


def seed_positions(indices: Iterable[int], base_seed: int, start: int, rank: int,
                   world_size: int) -> Iterator[SeededIndex]:
    """Tag this rank's ``indices`` (its share of the stream, from its ``start``-th index on) with seeds.

    The rank's ``p``-th index has global position ``p * world_size + rank`` — the position an interleaved
    split of one global stream gives it — so ranks never share a seed within a run.
    """
    for p, index in enumerate(indices, start):
        yield SeededIndex(index, derive_sample_seeds(base_seed, p * world_size + rank))


def sample_random_state(idx: int) -> AbstractContextManager:
    """The context a sample is loaded in: its seeds for a :class:`SeededIndex`, a no-op for a plain index."""
    seeds = getattr(idx, 'sample_seeds', None)
    return nullcontext() if seeds is None else seeded_random_state(seeds)


class SeededSampleMixin:
    """Put first in a dataset's bases: ``__getitem__`` of a :class:`SeededIndex` runs under its seeds."""

    def __getitem__(self, idx: int) -> Any:
        with sample_random_state(idx):
            return super().__getitem__(int(idx))
