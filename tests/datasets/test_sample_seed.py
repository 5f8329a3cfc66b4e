"""Per-sample augmentation seeds: the same stream position gets the same flip / LSJ scale / crop whatever the
number of dataloader workers and after a fast-forward (the data half of exact resume, issue 9 item 2)."""
from __future__ import annotations

import pickle
import random

import numpy as np
import torch
from mmengine.dataset import pseudo_collate
from mmengine.registry import init_default_scope
from torch.utils.data import DataLoader

from ovseg.datasets.sample_seed import SeededIndex
from ovseg.datasets.samplers import ResumableInfiniteSampler
from ovseg.registry import DATASETS
from tests.datasets.conftest import TOY_PARAMS

PIPELINE = [dict(type='LoadImage'), dict(type='LoadPanopticAnnotations'), dict(type='RandomFlip', prob=0.5),
            dict(type='RandomResizeScale', min_scale=0.3, max_scale=1.7, target_size=(64, 80)),
            dict(type='FixedSizeCrop', crop_size=(64, 80)), dict(type='PackSegInputs', with_instances=True)]


def _dataset(toy_root):
    init_default_scope('ovseg')
    return DATASETS.build(dict(type='ToyScenesDataset', data_root=str(toy_root), split='train', pipeline=PIPELINE,
                               generate=TOY_PARAMS))


def _batches(dataset, num_workers, num_batches, skip=0, seed_samples=True):
    sampler = ResumableInfiniteSampler(dataset, shuffle=True, seed=7, seed_samples=seed_samples)
    if skip:
        sampler.fast_forward(skip * 3)
    loader = DataLoader(dataset, batch_size=3, sampler=sampler, num_workers=num_workers, collate_fn=pseudo_collate,
                        worker_init_fn=lambda w: np.random.seed(1000 + w))  # workers' own streams differ
    out = []
    for batch in loader:
        out.append([(s.img_path, s.flip, s.scale_factor, tuple(x.shape), x.sum().item())
                     for x, s in zip(batch['inputs'], batch['data_samples'])])
        if len(out) == num_batches:
            return out


def test_augmentations_do_not_depend_on_workers_or_resume(toy_root):
    dataset = _dataset(toy_root)
    in_process = _batches(dataset, 0, 4)
    assert len({s[1] for b in in_process for s in b}) == 2  # flips both ways: augmentation is on
    assert _batches(dataset, 2, 4) == in_process
    assert _batches(dataset, 2, 2, skip=2) == in_process[2:]  # a fast-forwarded stream = the tail
    # negative control: with the workers' own streams the draws depend on the worker count
    assert _batches(dataset, 2, 4, seed_samples=False) != _batches(dataset, 0, 4, seed_samples=False)


def test_loading_a_sample_leaves_the_process_streams_alone(toy_root):
    dataset = _dataset(toy_root)
    random.seed(1), np.random.seed(1), torch.manual_seed(1)
    expected = (random.random(), np.random.rand(), torch.rand(1).item())
    random.seed(1), np.random.seed(1), torch.manual_seed(1)
    dataset[SeededIndex(0, (1, 2, 3))]
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == expected


def test_seeded_index_is_an_int_that_survives_pickling():
    idx = SeededIndex(5, (1, 2, 3))
    back = pickle.loads(pickle.dumps(idx))
    assert back == 5 and back.sample_seeds == (1, 2, 3) and [10, 11, 12, 13, 14, 15][idx] == 15
