"""Real + synthetic mixing: shared vocabulary, batch layout, DDP split, exact fast-forward."""
import pytest
from mmengine.registry import init_default_scope

import projects.dreammask.dreammask  # noqa: F401
from projects.dreammask.dreammask import RealSyntheticDataset, RealSyntheticMixSampler


class _Fake:
    def __init__(self, n, synonyms):
        self.n, self._meta = n, dict(class_synonyms=synonyms, is_thing=[True] * len(synonyms))

    @property
    def metainfo(self):
        return self._meta

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        return i


def _mix(n_real=10, n_syn=7):
    return RealSyntheticDataset(_Fake(n_real, [['a'], ['b']]), _Fake(n_syn, [['a'], ['b'], ['novel']]))


def test_batches_hold_real_then_synthetic():
    ds = _mix()
    s = RealSyntheticMixSampler(ds, batch_size=4, num_synthetic=1, seed=0)
    it = iter(s)
    idx = [next(it) for _ in range(40)]
    for b in range(10):
        batch = idx[4 * b:4 * b + 4]
        assert all(i < 10 for i in batch[:3]) and batch[3] >= 10
    assert sorted(idx[3::4][:7]) == list(range(10, 17))  # synthetic part cycles a full permutation


def test_fast_forward_equals_iteration():
    s = RealSyntheticMixSampler(_mix(), batch_size=4, num_synthetic=2, seed=3)
    it = iter(s)
    stream = [next(it) for _ in range(50)]
    s.fast_forward(28)
    it = iter(s)
    assert [next(it) for _ in range(22)] == stream[28:]


def test_ddp_ranks_get_disjoint_shares(monkeypatch):
    ds = _mix(n_real=8, n_syn=4)
    streams = []
    for rank in (0, 1):
        monkeypatch.setattr('projects.dreammask.dreammask.mixing.get_dist_info', lambda r=rank: (r, 2))
        it = iter(RealSyntheticMixSampler(ds, batch_size=2, num_synthetic=1, seed=0))
        streams.append([next(it) for _ in range(8)])
    real = [set(s[0::2]) for s in streams]
    assert real[0].isdisjoint(real[1]) and real[0] | real[1] == set(range(8))


def test_validation_and_synthetic_only_warning():
    with pytest.raises(ValueError, match='num_synthetic'):
        RealSyntheticMixSampler(_mix(), batch_size=2, num_synthetic=3, seed=0)
    with pytest.warns(UserWarning, match='bank never fills'):
        RealSyntheticMixSampler(_mix(), batch_size=2, num_synthetic=2, seed=0)
    with pytest.raises(ValueError, match='different vocabulary'):
        RealSyntheticDataset(_Fake(3, [['a']]), _Fake(3, [['x'], ['a']]))


def test_toy_config_builds_one_label_space(repo_root):
    from mmengine.config import Config

    from ovseg.registry import DATASETS
    init_default_scope('ovseg')
    cfg = Config.fromfile(str(repo_root / 'configs/dreammask/dreammask_fcclip-tiny_toy-scenes.py'))
    ds = DATASETS.build(cfg.train_dataloader.dataset)
    assert ds.metainfo['classes'][-2:] == ('star', 'water') and len(ds.metainfo['classes']) == 11
    assert cfg.model.sra.num_classes == len(ds.metainfo['classes'])
    sample = ds[ds.num_real]
    assert sample['data_samples'].metainfo['is_synthetic'] is True
    assert set(sample['data_samples'].gt_instances.labels.tolist()) & {9, 10}


def test_synthetic_ratio_sets_the_per_batch_split():
    ds = _mix()
    assert RealSyntheticMixSampler(ds, batch_size=4, synthetic_ratio=0.25, seed=0).num_synthetic == 1
    assert RealSyntheticMixSampler(ds, batch_size=2, synthetic_ratio=0.1, seed=0).num_synthetic == 1  # >= 1
    assert RealSyntheticMixSampler(ds, batch_size=2, synthetic_ratio=0.9, seed=0).num_synthetic == 1  # real kept
    with pytest.raises(ValueError, match='exactly one'):
        RealSyntheticMixSampler(ds, batch_size=4, num_synthetic=1, synthetic_ratio=0.25)
    with pytest.raises(ValueError, match='exactly one'):
        RealSyntheticMixSampler(ds, batch_size=4)


def test_stream_equals_the_pre_core_sampler_stream(monkeypatch):
    """Frozen output of the sampler as it was before it became a use of the core MultiSourceSampler
    (seed 5, 2 ranks): DreamMask runs and toy results made before the move stay reproducible."""
    expected = {0: [1, 9, 3, 12, 0, 8, 4, 15, 8, 6, 0, 10, 5, 7, 0, 11, 3, 6, 1, 11, 9, 8, 1, 15],
                1: [4, 6, 5, 14, 2, 7, 2, 13, 7, 1, 3, 16, 9, 5, 4, 16, 9, 8, 2, 10, 3, 6, 5, 12]}
    for rank, stream in expected.items():
        monkeypatch.setattr('projects.dreammask.dreammask.mixing.get_dist_info', lambda r=rank: (r, 2))
        it = iter(RealSyntheticMixSampler(_mix(), batch_size=4, num_synthetic=1, seed=5))
        assert [next(it) for _ in range(24)] == stream
