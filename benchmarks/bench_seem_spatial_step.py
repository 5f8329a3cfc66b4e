"""SEEM spatial training: what do the visual-prompt loop and its click rounds add to a training step?

On the CPU toy SEEM (``configs/seem_ft/seem_tiny_toy-frozen-backbone-full-decoder-spatial.py``: tiny Focal-T
architecture, 128² ToyScenes, batch 4, grounding sentences) it times, alternating, one training step (loss +
backward) of the same model and batch:

* ``no spatial loop``: panoptic + grounding only (the four strategies' recipes);
* ``spatial, k rounds``: the spatial loop with exactly k simulated click rounds (k = 0, 2, 5); SEEM draws
  k uniformly from 0..``SPATIAL.MAX_ITER`` (5), i.e. 2.5 rounds on average.

It prints the medians and each one's ratio to the step without the loop.

    python benchmarks/bench_seem_spatial_step.py [--repeats 5]
"""
from __future__ import annotations

import argparse
import os.path as osp
import statistics
import sys
import tempfile
import time

import torch

sys.path.insert(0, osp.abspath(osp.join(osp.dirname(__file__), '..')))

from mmengine.config import Config  # noqa: E402
from mmengine.registry import init_default_scope  # noqa: E402

import projects.seem_ft.seem_ft  # noqa: E402,F401
from ovseg.registry import DATASETS, MODELS  # noqa: E402

CONFIG = osp.join(osp.dirname(__file__), '..', 'configs/seem_ft/seem_tiny_toy-frozen-backbone-full-decoder-spatial.py')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--repeats', type=int, default=5)
    args = parser.parse_args()
    init_default_scope('ovseg')
    cfg = Config.fromfile(CONFIG)
    root = tempfile.mkdtemp(prefix='bench_seem_spatial_')
    data_cfg = dict(cfg.train_dataloader.dataset, data_root=root,
                    generate=dict(cfg.toy_generate, num_train=8, num_val=2))
    ds = DATASETS.build(data_cfg)
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.set_vocabulary(ds.metainfo['classes'], ds.metainfo.get('is_thing'), 'train')
    items = [ds[i] for i in range(cfg.train_dataloader.batch_size)]
    data = model.data_preprocessor(dict(inputs=[b['inputs'] for b in items],
                                        data_samples=[b['data_samples'] for b in items]), True)
    spatial = dict(model.spatial_training)
    variants = {'no spatial loop': None, **{f'spatial, {k} rounds': dict(spatial, min_iter=k, max_iter=k)
                                             for k in (0, 2, 5)}}

    def step(option: dict | None) -> None:
        model.spatial_training = option
        model.train()
        losses = model(**data, mode='loss')
        sum(v for k, v in losses.items() if 'loss' in k).backward()
        model.zero_grad(set_to_none=True)

    for option in variants.values():  # warm-up
        step(option)
    times: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(args.repeats):
        for name, option in variants.items():
            t = time.perf_counter()
            step(option)
            times[name].append(time.perf_counter() - t)
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f'batch {len(items)} images 128x128, {torch.get_num_threads()} threads, {args.repeats} repeats (medians)')
    base = med['no spatial loop']
    for name, value in med.items():
        print(f'  {name:18s} {1000 * value:8.1f} ms  {value / base:5.2f}x')


if __name__ == '__main__':
    main()
