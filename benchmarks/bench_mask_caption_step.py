"""Mask-caption loop: is stage 1 (caption generation) cheap next to the training step?

On the CPU toy model (tiny InternViT / 2-layer Qwen2 / tiny SAM2, ToyScenes referring regions without their text,
so every sample is captioned) it times, alternating, per batch of ``--batch`` regions:

* ``stage 1 batched``: the loop's captioning (one left-padded batch, KV cache) + the teacher's acceptance pass;
* ``stage 1 one-by-one``: the same captions generated one region at a time (the seed's per-sample loop);
* ``full step``: ``loss`` (stage 1 + student passes) + backward.

It prints the medians, the batched / one-by-one ratio and stage 1's share of the step, and checks that both
stage-1 variants produce the same captions.

    python benchmarks/bench_mask_caption_step.py [--batch 8] [--tokens 32] [--repeats 5]
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

import projects.sa2va_sft.sa2va_sft  # noqa: E402,F401
from ovseg.engine.trainable_ema import TrainableEMA  # noqa: E402
from ovseg.models.peft import configure_trainable  # noqa: E402
from ovseg.registry import DATASETS, MODELS  # noqa: E402

CONFIG = osp.join(osp.dirname(__file__), '..', 'configs/sa2va_sft/sa2va_tiny_toy-referring.py')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--batch', type=int, default=8)
    parser.add_argument('--tokens', type=int, default=32, help='caption budget (max_caption_tokens)')
    parser.add_argument('--repeats', type=int, default=5)
    args = parser.parse_args()
    init_default_scope('ovseg')
    cfg = Config.fromfile(CONFIG)
    pipe = [dict(type='LoadImage'), dict(type='LoadReferringAnnotations'),
            dict(type='ReferringToRegionPair', keep_expression=False),
            dict(type='FormatMaskCaptionInputs', image_size=56, max_num=1, use_thumbnail=False, sam_image_size=256),
            dict(type='PackMaskCaptionInputs')]
    root = tempfile.mkdtemp(prefix='bench_mc_')
    ds = DATASETS.build(dict(type='ToyReferringDataset', data_root=root, split='train', group='ref', pipeline=pipe,
                             generate=dict(num_train=12, num_val=2, size=(128, 128), seed=0, novel_classes=[])))
    torch.manual_seed(0)
    model = MODELS.build(dict(cfg.model, type='MaskCaptionSa2VA', max_caption_tokens=args.tokens, accept_iou=0.0))
    configure_trainable(model, cfg.peft, cfg.trainable_params, log_table=False)
    model.ema_teacher = TrainableEMA(model, decay=0.999)
    items = [ds[i % len(ds)] for i in range(args.batch)]
    data = model.data_preprocessor(dict(inputs=[b['inputs'] for b in items],
                                        data_samples=[b['data_samples'] for b in items]), True)
    tiles, tiles2, _ = model.split_pair_inputs(data['inputs'])
    prompts = [d.prompt_masks[0] for d in data['data_samples']]

    def batched() -> list[str]:
        with model._captioner():
            return model.generate_captions(model.pair_visual_tokens(tiles, tiles2)[0], prompts)

    def one_by_one() -> list[str]:
        with model._captioner():
            vis = model.pair_visual_tokens(tiles, tiles2)[0]
            return [model.generate_captions([v], [p])[0] for v, p in zip(vis, prompts)]

    def step() -> float:
        model.train()
        losses = model(**data, mode='loss')
        sum(v for k, v in losses.items() if 'loss' in k).backward()
        model.zero_grad(set_to_none=True)
        return float(losses['stage1_s'])

    times: dict[str, list[float]] = {'stage 1 batched': [], 'stage 1 one-by-one': [], 'full step': []}
    stage1_in_step = []
    same = batched() == one_by_one()
    step()  # warm-up
    for _ in range(args.repeats):
        for name, fn in (('stage 1 batched', batched), ('stage 1 one-by-one', one_by_one)):
            t = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t)
        t = time.perf_counter()
        stage1_in_step.append(step())
        times['full step'].append(time.perf_counter() - t)
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f'batch {args.batch} regions, caption budget {args.tokens} tokens, {torch.get_num_threads()} threads, '
          f'{args.repeats} repeats (medians)')
    for name, value in med.items():
        print(f'  {name:20s} {1000 * value:8.1f} ms')
    print(f'  batched / one-by-one generation: {med["stage 1 batched"] / med["stage 1 one-by-one"]:.2f}x  '
          f'(same captions: {same})')
    print(f'  stage 1 (captions + acceptance) share of the step: '
          f'{100 * statistics.median(stage1_in_step) / med["full step"]:.0f}%')


if __name__ == '__main__':
    main()
