"""Per-batch mixing of N named datasets: a concatenating wrapper and a batch-aware infinite sampler.

Why a sampler and not a weighted ``ConcatDataset``: projects need guarantees per *batch*, not on average —
DreamMask needs real images next to synthetic ones in every batch (its memory bank is filled from the real
ones), Sa2VA mixes SA-V / SA-1B / Open Images / RefCOCO with fixed proportions. ``MultiSourceSampler`` lays
out every per-rank batch from the sources, either with fixed counts or by drawing each slot's source from a
seeded categorical, and supports ``fast_forward`` so ``ResumableIterBasedTrainLoop`` resumes exactly.
"""
from __future__ import annotations

import itertools
import pickle
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import torch
from mmengine.dist import get_dist_info, sync_random_seed
from torch.utils.data import Sampler

from ovseg.registry import DATA_SAMPLERS, DATASETS

from ..sample_seed import sample_random_state, seed_positions

# Slot layouts of weighted mixing are drawn this many batches at a time (a constant, so the stream never
# depends on how far a consumer has read).
_LAYOUT_CHUNK_BATCHES = 256


def _same_meta(a: Any, b: Any) -> bool:
    """Equality of two metainfo values; falls back to pickled bytes for types without a boolean ``==``."""
    try:
        return bool(a == b)
    except (TypeError, ValueError):  # numpy arrays: element-wise ``==``
        return pickle.dumps(a) == pickle.dumps(b)


@DATASETS.register_module()
class MultiSourceDataset:
    """Named sources concatenated in order: source ``i`` owns indices ``[offsets[i], offsets[i] + sizes[i])``.

    Args:
        sources: ``{name: dataset config | dataset | dict(dataset=..., max_samples=N)}``. A dict with a
            ``type`` key is a dataset config; a dict without one is a source spec. ``max_samples`` keeps the
            first N samples of that source in its own order (filter or shuffle inside the source for another
            subset); ``None`` keeps all.
        metainfo: which class vocabulary the mixture reports. ``None``: every source must report the same
            metainfo (checked; an error names the first differing source and keys). A source name: that
            source's metainfo (the others are the caller's responsibility, e.g. DreamMask maps synthetic
            names onto the real vocabulary). A dict: used as given.

    Samples are returned exactly as the source produced them (each source runs its own pipeline). The sources
    are ``source_datasets`` (not ``datasets``: tools that look through ``ConcatDataset`` parts would otherwise
    demand one vocabulary of all sources, which ``metainfo`` already decides).
    """

    def __init__(self, sources: Mapping[str, Any], metainfo: str | Mapping | None = None) -> None:
        if not isinstance(sources, Mapping) or not sources:
            raise ValueError(f'sources must be a non-empty dict {{name: dataset}}, got {type(sources).__name__}')
        self.names: list[str] = []
        self.source_datasets: list[Any] = []
        self.sizes: list[int] = []
        for name, spec in sources.items():
            dataset, max_samples = self._build_source(name, spec)
            size = len(dataset)
            if max_samples is not None:
                if int(max_samples) < 0:
                    raise ValueError(f"source '{name}': max_samples must be >= 0, got {max_samples}")
                size = min(size, int(max_samples))
            self.names.append(str(name))
            self.source_datasets.append(dataset)
            self.sizes.append(size)
        self.offsets = [0] + list(itertools.accumulate(self.sizes))[:-1]
        self._metainfo = self._resolve_metainfo(metainfo)

    @staticmethod
    def _build_source(name: str, spec: Any) -> tuple[Any, int | None]:
        max_samples = None
        if isinstance(spec, Mapping) and 'type' not in spec:
            unknown = set(spec) - {'dataset', 'max_samples'}
            if 'dataset' not in spec or unknown:
                raise ValueError(f"source '{name}': a source spec holds 'dataset' (and optionally 'max_samples'); "
                                 f'got keys {sorted(spec)}')
            spec, max_samples = spec['dataset'], spec.get('max_samples')
        dataset = DATASETS.build(spec) if isinstance(spec, Mapping) else spec
        if not hasattr(dataset, '__len__') or not hasattr(dataset, '__getitem__'):
            raise TypeError(f"source '{name}': {type(dataset).__name__} is not a map-style dataset")
        return dataset, max_samples

    def _resolve_metainfo(self, metainfo: str | Mapping | None) -> dict:
        if isinstance(metainfo, Mapping):
            return dict(metainfo)
        metas = [dict(getattr(d, 'metainfo', None) or {}) for d in self.source_datasets]
        if isinstance(metainfo, str):
            if metainfo not in self.names:
                raise ValueError(f"metainfo='{metainfo}' names no source; sources are {self.names}")
            return metas[self.names.index(metainfo)]
        if metainfo is not None:
            raise TypeError(f'metainfo must be None, a source name or a dict, got {type(metainfo).__name__}')
        first = metas[0]
        for name, meta in zip(self.names[1:], metas[1:]):
            differing = sorted(k for k in set(first) | set(meta) if k not in first or k not in meta
                               or not _same_meta(first[k], meta[k]))
            if differing:
                raise ValueError(f"source '{name}' reports different metainfo than '{self.names[0]}' "
                                 f'(keys {differing}); pass metainfo=<source name> or a dict to choose one')
        return first

    @property
    def metainfo(self) -> dict:
        return dict(self._metainfo)

    def __len__(self) -> int:
        return sum(self.sizes)

    def source_of(self, idx: int) -> tuple[str, int]:
        """(source name, index inside that source) of a global index."""
        if not 0 <= idx < len(self):
            raise IndexError(f'index {idx} out of range for {len(self)} samples over sources {self.names}')
        for name, offset, size in zip(self.names, self.offsets, self.sizes):
            if idx < offset + size:
                return name, idx - offset
        raise AssertionError('unreachable')

    def __getitem__(self, idx: int) -> Any:
        name, local = self.source_of(int(idx))
        with sample_random_state(idx):  # a SeededIndex from the sampler: the sample's own seeds
            return self.source_datasets[self.names.index(name)][local]


def _per_source(value: Sequence | Mapping | None, names: list[str], what: str) -> list[float] | None:
    """A per-source list in source order from a list (same order) or a {name: value} dict (missing = 0)."""
    if value is None:
        return None
    if isinstance(value, Mapping):
        unknown = sorted(set(value) - set(names))
        if unknown:
            raise ValueError(f'{what} names unknown sources {unknown}; sources are {names}')
        return [value.get(n, 0) for n in names]
    value = list(value)
    if len(value) != len(names):
        raise ValueError(f'{what} has {len(value)} entries for {len(names)} sources {names}')
    return value


@DATA_SAMPLERS.register_module()
class MultiSourceSampler(Sampler):
    """Infinite per-rank index stream whose every batch of ``batch_size`` is laid out from the sources.

    Args:
        dataset: a ``MultiSourceDataset`` (anything with ``names``, ``sizes`` and ``offsets``).
        batch_size: the dataloader's per-rank batch size (the runner checks they agree).
        counts: samples per batch from each source (list in source order or ``{name: count}``); they must
            sum to ``batch_size``. Every batch holds exactly these counts, grouped by source in source order.
        weights: instead of counts, each slot's source is drawn from the categorical ``weights / sum``;
            slots keep their drawn order. Draws come from a generator seeded by ``seed``; with
            ``same_layout_on_all_ranks`` (default) every rank draws the same layout, so in DDP all ranks run
            the same per-source branches of the model (a rank without, e.g., video samples would leave
            parameters unused); otherwise each rank draws its own.
        shuffle: shuffle each source (a new permutation per pass) or walk it in order.
        seed: base seed (synchronised over ranks when None). Source ``i`` is shuffled by a generator seeded
            ``seed + i``; the layout draws use ``seed + N`` (+ ``1 + rank`` when layouts differ per rank).
        rank, world_size: override the process group's values (tests, tools).
        seed_samples: yield :class:`~ovseg.datasets.sample_seed.SeededIndex` indices whose augmentation seeds
            derive from (``seed``, global stream position), so a resumed run draws the same augmentations.

    Each source's infinite shuffled stream is split over ranks (rank ``r`` takes positions ``r, r + W, ...``),
    so ranks never share a sample within a pass over a source. ``fast_forward(n)`` restarts the stream and
    drops its first ``n`` indices without loading any sample.
    """

    def __init__(self, dataset: Any, batch_size: int, counts: Sequence[int] | Mapping[str, int] | None = None,
                 weights: Sequence[float] | Mapping[str, float] | None = None, shuffle: bool = True,
                 seed: int | None = None, same_layout_on_all_ranks: bool = True, *, rank: int | None = None,
                 world_size: int | None = None, seed_samples: bool = True) -> None:
        for attr in ('names', 'sizes', 'offsets'):
            if not hasattr(dataset, attr):
                raise TypeError(f'{type(self).__name__} needs a MultiSourceDataset (names / sizes / offsets), '
                                f'got {type(dataset).__name__}')
        if int(batch_size) < 1:
            raise ValueError(f'batch_size must be >= 1, got {batch_size}')
        if (counts is None) == (weights is None):
            raise ValueError('give exactly one of counts (samples per batch per source) and weights')
        self.names, self.sizes, self.offsets = list(dataset.names), list(dataset.sizes), list(dataset.offsets)
        self.batch_size, self.shuffle = int(batch_size), shuffle
        self.same_layout_on_all_ranks = same_layout_on_all_ranks
        self.counts = self._check_counts(counts) if counts is not None else None
        self.weights = self._check_weights(weights) if weights is not None else None
        wanted = self.counts if self.counts is not None else self.weights
        for name, size, want in zip(self.names, self.sizes, wanted):
            if want > 0 and size == 0:
                raise ValueError(f"source '{name}' is empty but the sampler draws from it "
                                 f"({'count' if self.counts is not None else 'weight'} {want})")
        dist_rank, dist_world = get_dist_info()
        self.rank = dist_rank if rank is None else int(rank)
        self.world_size = dist_world if world_size is None else int(world_size)
        if not 0 <= self.rank < self.world_size:
            raise ValueError(f'rank {self.rank} outside world size {self.world_size}')
        self.seed = sync_random_seed() if seed is None else int(seed)
        self.seed_samples = seed_samples
        self.indices = self._stream()

    def _check_counts(self, counts: Sequence[int] | Mapping[str, int]) -> list[int]:
        counts = [int(c) for c in _per_source(counts, self.names, 'counts')]
        if any(c < 0 for c in counts):
            raise ValueError(f'counts must be >= 0, got {dict(zip(self.names, counts))}')
        if sum(counts) != self.batch_size:
            raise ValueError(f'counts {dict(zip(self.names, counts))} sum to {sum(counts)}, '
                             f'not to batch_size={self.batch_size}')
        return counts

    def _check_weights(self, weights: Sequence[float] | Mapping[str, float]) -> list[float]:
        weights = [float(w) for w in _per_source(weights, self.names, 'weights')]
        if any(not w >= 0 for w in weights) or sum(weights) <= 0:
            raise ValueError(f'weights must be >= 0 with a positive sum, got {dict(zip(self.names, weights))}')
        return weights

    def _source_stream(self, i: int) -> Iterator[int]:
        """This rank's share of source ``i``'s infinite (shuffled) stream, as global indices."""
        size, offset = self.sizes[i], self.offsets[i]
        if size == 0:
            return iter(())

        def infinite() -> Iterator[int]:
            g = torch.Generator()
            g.manual_seed(self.seed + i)
            while True:
                yield from (torch.randperm(size, generator=g).tolist() if self.shuffle else range(size))
        return (offset + j for j in itertools.islice(infinite(), self.rank, None, self.world_size))

    def _layouts(self) -> Iterator[list[int]]:
        """Source index of every slot, one batch at a time."""
        if self.counts is not None:
            layout = [i for i, c in enumerate(self.counts) for _ in range(c)]
            while True:
                yield layout
        g = torch.Generator()
        salt = 0 if self.same_layout_on_all_ranks else 1 + self.rank
        g.manual_seed(self.seed + len(self.names) + salt)
        probs = torch.tensor(self.weights, dtype=torch.float64)
        while True:
            draws = torch.multinomial(probs, _LAYOUT_CHUNK_BATCHES * self.batch_size, replacement=True,
                                      generator=g).view(_LAYOUT_CHUNK_BATCHES, self.batch_size).tolist()
            yield from draws

    def _source_indices(self) -> Iterator[int]:
        streams = [self._source_stream(i) for i in range(len(self.names))]
        for layout in self._layouts():
            for i in layout:
                yield next(streams[i])

    def _stream(self, start: int = 0) -> Iterator[int]:
        """This rank's stream from its ``start``-th index on (the skipped ones are drawn, never loaded)."""
        indices = itertools.islice(self._source_indices(), start, None)
        if not self.seed_samples:
            return indices
        return seed_positions(indices, self.seed, start, self.rank, self.world_size)

    def __iter__(self) -> Iterator[int]:
        yield from self.indices

    def __len__(self) -> int:
        return sum(self.sizes)

    def set_epoch(self, epoch: int) -> None:
        """Infinite stream: nothing to reseed per epoch (kept for DistSamplerSeedHook)."""

    def fast_forward(self, num_indices: int) -> None:
        """Restart this rank's stream and drop its first ``num_indices`` indices (no sample is loaded)."""
        self.indices = self._stream(start=num_indices)
