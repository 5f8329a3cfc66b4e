"""SRA's share of a training step: DreamMaskFCCLIP step time with the alignment loss on vs off.

Runs the tiny toy model (CPU, single thread) on real+synthetic batches; also times the SRA computation
(object pooling, projection, bank update, loss) alone inside the step.

    python benchmarks/bench_sra.py [--steps 30] [--batch 4]
"""
from __future__ import annotations

import argparse
import copy
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--steps', type=int, default=30)
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    from mmengine.config import Config
    from mmengine.dataset import pseudo_collate
    from mmengine.registry import init_default_scope

    import projects.dreammask.dreammask  # noqa: F401
    from ovseg.registry import DATA_SAMPLERS, DATASETS, MODELS
    init_default_scope('ovseg')
    cfg = Config.fromfile(str(ROOT / 'configs/dreammask/dreammask_fcclip-tiny_toy-scenes.py'))
    ds = DATASETS.build(cfg.train_dataloader.dataset)
    sampler = iter(DATA_SAMPLERS.build(cfg.train_dataloader.sampler, default_args=dict(dataset=ds, seed=0)))
    bs = cfg.train_dataloader.batch_size
    batches = [pseudo_collate([ds[next(sampler)] for _ in range(bs)]) for _ in range(6)]
    runs = {}
    for name, lam in (('off', 0.0), ('on', 0.1)):
        m = copy.deepcopy(cfg.model)
        m.sra.lambda_sra = lam
        torch.manual_seed(0)
        model = MODELS.build(m)
        model.set_vocabulary(ds.metainfo['class_synonyms'], ds.metainfo['is_thing'], 'train')
        opt = torch.optim.AdamW([q for q in model.parameters() if q.requires_grad], lr=1e-4)
        rec = dict(model=model, opt=opt, steps=[], sra=[])
        orig = model.sra_loss

        def timed_sra(*a, _orig=orig, _rec=rec, **k):
            t0 = time.perf_counter()
            out = _orig(*a, **k)
            _rec['sra'].append(time.perf_counter() - t0)
            return out
        model.sra_loss = timed_sra
        runs[name] = rec
    for i in range(args.steps + 3):  # alternate the two models step by step (shared-machine noise hits both)
        for rec in runs.values():
            model, opt = rec['model'], rec['opt']
            data = model.data_preprocessor(batches[i % len(batches)], True)
            t0 = time.perf_counter()
            losses = model(**data, mode='loss')
            sum(v for k, v in losses.items() if 'loss' in k).backward()
            opt.step()
            opt.zero_grad()
            if i >= 3:
                rec['steps'].append(time.perf_counter() - t0)
    off, on = statistics.median(runs['off']['steps']), statistics.median(runs['on']['steps'])
    sra_fwd = statistics.median(runs['on']['sra'][3:])
    print(f'| tiny DreamMask step (batch {bs}, 128², CPU 1 thread) | median |')
    print('|---|---|')
    print(f'| SRA off | {1e3 * off:.1f} ms |')
    print(f'| SRA on | {1e3 * on:.1f} ms |')
    print(f'| SRA forward inside the step | {1e3 * sra_fwd:.2f} ms ({100 * sra_fwd / on:.1f} % of the step) |')
    print(f'| step-time difference on - off | {100 * (on - off) / on:+.1f} % |')
    return dict(step_off=off, step_on=on, sra_forward=sra_fwd)


if __name__ == '__main__':
    main()
    raise SystemExit(0)
