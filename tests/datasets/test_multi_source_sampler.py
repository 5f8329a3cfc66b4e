"""MultiSourceDataset / MultiSourceSampler: per-batch layout, weights, rank split, exact fast-forward, errors."""
import itertools
from collections import Counter

import numpy as np
import pytest
from torch.utils.data import DataLoader

from ovseg.datasets.samplers import MultiSourceDataset, MultiSourceSampler
from ovseg.registry import DATA_SAMPLERS, DATASETS


class _Src:
    """A map-style dataset whose samples say where they come from."""

    def __init__(self, tag, n, classes=('a', 'b')):
        self.tag, self.n, self.metainfo = tag, n, dict(classes=tuple(classes))

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        if not 0 <= i < self.n:
            raise IndexError(i)
        return f'{self.tag}{i}'


def _ds(sizes=(12, 6, 3), **kw):
    return MultiSourceDataset({f's{k}': _Src(f's{k}:', n) for k, n in enumerate(sizes)}, **kw)


def _take(sampler, n):
    return list(itertools.islice(iter(sampler), n))


def _sources(ds, idx):
    return [ds.source_of(i)[0] for i in idx]


def test_dataset_concatenates_named_sources_with_max_samples_and_metainfo_policy():
    ds = MultiSourceDataset(dict(a=_Src('a', 5), b=dict(dataset=_Src('b', 10), max_samples=3), c=_Src('c', 2)))
    assert ds.names == ['a', 'b', 'c'] and ds.sizes == [5, 3, 2] and ds.offsets == [0, 5, 8] and len(ds) == 10
    assert [ds[i] for i in range(10)] == ['a0', 'a1', 'a2', 'a3', 'a4', 'b0', 'b1', 'b2', 'c0', 'c1']
    assert ds.source_of(7) == ('b', 2) and ds.metainfo == dict(classes=('a', 'b'))
    with pytest.raises(IndexError, match='out of range'):
        ds[10]
    other = dict(a=_Src('a', 2), b=_Src('b', 2, classes=('x', )))
    with pytest.raises(ValueError, match=r"source 'b' reports different metainfo than 'a' \(keys \['classes'\]\)"):
        MultiSourceDataset(other)
    assert MultiSourceDataset(other, metainfo='b').metainfo == dict(classes=('x', ))
    assert MultiSourceDataset(other, metainfo=dict(classes=('y', ))).metainfo == dict(classes=('y', ))
    with pytest.raises(ValueError, match="names no source"):
        MultiSourceDataset(other, metainfo='c')
    with pytest.raises(ValueError, match="source 'a': a source spec holds 'dataset'"):
        MultiSourceDataset(dict(a=dict(max_samples=3)))


def test_dataset_and_sampler_build_from_config():
    DATASETS.register_module(name='_MixTestSrc', module=_Src, force=True)
    ds = DATASETS.build(dict(type='MultiSourceDataset', sources=dict(
        x=dict(type='_MixTestSrc', tag='x', n=4), y=dict(dataset=dict(type='_MixTestSrc', tag='y', n=9),
                                                          max_samples=2))))
    assert ds.sizes == [4, 2]
    s = DATA_SAMPLERS.build(dict(type='MultiSourceSampler', batch_size=3, counts=dict(x=2, y=1), seed=0),
                            default_args=dict(dataset=ds))
    assert all(_sources(ds, b) == ['x', 'x', 'y'] for b in np.reshape(_take(s, 30), (10, 3)).tolist())


def test_fixed_counts_give_every_batch_the_same_composition_through_a_dataloader():
    ds = _ds()
    s = MultiSourceSampler(ds, batch_size=5, counts=dict(s0=2, s2=3), seed=1)  # s1 not drawn
    loader = DataLoader(ds, batch_size=5, sampler=s, collate_fn=list)
    batches = list(itertools.islice(iter(loader), 12))
    for b in batches:
        assert [x.split(':')[0] for x in b] == ['s0', 's0', 's2', 's2', 's2']
    s0 = [x for b in batches for x in b if x.startswith('s0')]
    for p in range(2):  # every pass over a source is a permutation of it
        assert sorted(s0[12 * p:12 * p + 12]) == sorted(f's0:{i}' for i in range(12))
    assert s0[:12] != s0[12:24]  # a new permutation per pass


def test_unshuffled_sources_are_walked_in_order():
    ds = _ds(sizes=(3, 2))
    s = MultiSourceSampler(ds, batch_size=2, counts=[1, 1], shuffle=False, seed=0)
    assert _take(s, 10) == [0, 3, 1, 4, 2, 3, 0, 4, 1, 3]


def test_weights_draw_each_slot_with_the_given_frequencies():
    ds = _ds()
    s = MultiSourceSampler(ds, batch_size=8, weights=[0.2, 0.3, 0.5], seed=7)
    idx = _take(s, 8 * 3000)
    freq = Counter(_sources(ds, idx))
    n = len(idx)
    for name, p in zip(ds.names, (0.2, 0.3, 0.5)):
        assert abs(freq[name] / n - p) < 4 * (p * (1 - p) / n) ** 0.5 + 1e-3, (name, freq[name] / n)
    layouts = [tuple(_sources(ds, idx[8 * b:8 * b + 8])) for b in range(3000)]
    assert len(set(layouts)) > 100  # layouts vary from batch to batch
    assert _take(MultiSourceSampler(ds, batch_size=8, weights=[0.2, 0.3, 0.5], seed=7), 800) == idx[:800]
    assert _take(MultiSourceSampler(ds, batch_size=8, weights=[0.2, 0.3, 0.5], seed=8), 800) != idx[:800]
    zero = MultiSourceSampler(ds, batch_size=4, weights=dict(s0=1.0, s2=1.0), seed=0)
    assert 's1' not in _sources(ds, _take(zero, 400))


@pytest.mark.parametrize('mode', [dict(counts=[2, 1, 1]), dict(weights=[3, 2, 1])])
def test_ranks_split_every_source_disjointly(mode):
    ds = _ds(sizes=(12, 6, 6))
    world, batch = 3, 4
    streams = [_take(MultiSourceSampler(ds, batch_size=batch, seed=11, rank=r, world_size=world, **mode), 400)
               for r in range(world)]
    layouts = [[_sources(ds, st[b * batch:(b + 1) * batch]) for b in range(100)] for st in streams]
    assert layouts[0] == layouts[1] == layouts[2]  # same_layout_on_all_ranks: same branches everywhere
    for src, (offset, size) in enumerate(zip(ds.offsets, ds.sizes)):
        per_rank = [[i for i in st if offset <= i < offset + size] for st in streams]
        k = min(len(p) for p in per_rank) // (size // world) * (size // world)
        assert k >= size // world
        # pass p over the source: rank r holds positions r, r+W, ... of the same permutation
        for p in range(k // (size // world)):
            chunk = [set(pr[p * size // world:(p + 1) * size // world]) for pr in per_rank]
            assert set().union(*chunk) == set(range(offset, offset + size)), (src, p)
            assert sum(map(len, chunk)) == size  # pairwise disjoint


def test_per_rank_layouts_when_asked():
    ds = _ds()
    kw = dict(batch_size=6, weights=[1, 1, 1], seed=3, world_size=2, same_layout_on_all_ranks=False)
    a, b = (_sources(ds, _take(MultiSourceSampler(ds, rank=r, **kw), 600)) for r in (0, 1))
    assert a != b


@pytest.mark.parametrize('mode', [dict(counts=[1, 2, 1]), dict(weights=[0.5, 0.25, 0.25])])
def test_fast_forward_equals_the_uninterrupted_stream(mode):
    ds = _ds()
    for rank in (0, 1):
        s = MultiSourceSampler(ds, batch_size=4, seed=2, rank=rank, world_size=2, **mode)
        stream = _take(s, 4 * 700)  # crosses a layout chunk of the weighted mode (256 batches)
        for skip in (0, 4 * 37, 4 * 256, 4 * 300 + 2):
            resumed = MultiSourceSampler(ds, batch_size=4, seed=2, rank=rank, world_size=2, **mode)
            resumed.fast_forward(skip)
            assert _take(resumed, 4 * 700 - skip) == stream[skip:], (rank, skip)


def test_errors_name_the_problem():
    ds = MultiSourceDataset(dict(real=_Src('r', 4), synthetic=_Src('s', 0)))
    with pytest.raises(ValueError, match="source 'synthetic' is empty but the sampler draws from it"):
        MultiSourceSampler(ds, batch_size=2, counts=[1, 1], seed=0)
    with pytest.raises(ValueError, match="source 'synthetic' is empty"):
        MultiSourceSampler(ds, batch_size=2, weights=dict(real=1, synthetic=0.5), seed=0)
    assert _take(MultiSourceSampler(ds, batch_size=2, counts=[2, 0], seed=0), 4)  # an unused empty source is fine
    with pytest.raises(ValueError, match=r"sum to 3, not to batch_size=2"):
        MultiSourceSampler(ds, batch_size=2, counts=[2, 1], seed=0)
    with pytest.raises(ValueError, match='exactly one of counts'):
        MultiSourceSampler(ds, batch_size=2, seed=0)
    with pytest.raises(ValueError, match='exactly one of counts'):
        MultiSourceSampler(ds, batch_size=2, counts=[2, 0], weights=[1, 0], seed=0)
    with pytest.raises(ValueError, match=r"unknown sources \['fake'\]"):
        MultiSourceSampler(ds, batch_size=2, counts=dict(fake=2), seed=0)
    with pytest.raises(ValueError, match='has 3 entries for 2 sources'):
        MultiSourceSampler(ds, batch_size=2, counts=[1, 1, 0], seed=0)
    with pytest.raises(ValueError, match='counts must be >= 0'):
        MultiSourceSampler(ds, batch_size=2, counts=[3, -1], seed=0)
    with pytest.raises(ValueError, match='positive sum'):
        MultiSourceSampler(ds, batch_size=2, weights=[0, 0], seed=0)
    with pytest.raises(TypeError, match='needs a MultiSourceDataset'):
        MultiSourceSampler(list(range(4)), batch_size=2, counts=[2], seed=0)
    with pytest.raises(ValueError, match="max_samples must be >= 0"):
        MultiSourceDataset(dict(a=dict(dataset=_Src('a', 3), max_samples=-1)))


def test_seed_is_synchronised_when_not_given(monkeypatch):
    monkeypatch.setattr('ovseg.datasets.samplers.multi_source.sync_random_seed', lambda: 99)
    s = MultiSourceSampler(_ds(), batch_size=3, counts=[1, 1, 1])
    assert s.seed == 99 and _take(s, 30) == _take(MultiSourceSampler(_ds(), 3, counts=[1, 1, 1], seed=99), 30)


def test_vocabulary_hook_reads_the_mixture_metainfo_policy():
    """Sources with different vocabularies (DreamMask: base vs base + novel) under an explicit policy."""
    from ovseg.engine.hooks.vocabulary_hook import dataset_metainfo

    real = _Src('r', 2)
    real.metainfo = dict(class_synonyms=[['a'], ['b']], is_thing=[True, False])
    syn = _Src('s', 2)
    syn.metainfo = dict(class_synonyms=[['a'], ['b'], ['novel']], is_thing=[True, False, True])
    ds = MultiSourceDataset(dict(real=real, synthetic=syn), metainfo='synthetic')
    assert dataset_metainfo(ds)['class_synonyms'] == [['a'], ['b'], ['novel']]
