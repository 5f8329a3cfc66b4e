"""Speed of the pure-PyTorch multi-scale deformable attention against transformers' port, at FC-CLIP sizes.

    python benchmarks/bench_msdeform.py [--size 512] [--batch 1] [--steps 5] [--warmup 1] [--threads 2]
        [--device cpu|cuda] [--json out.json]

Times forward and forward+backward of the core sampling op (``multi_scale_deformable_attn``) and of
transformers' ``multi_scale_deformable_attention`` on identical inputs, plus the whole FC-CLIP pixel decoder
(ConvNeXt-L channels, 6 layers, 256-d) forward. The encoder queries are all res3..res5 positions of a
``size``×``size`` image (strides 8/16/32), 8 heads × 32 channels, 4 points per level. Medians over ``--steps``.
"""
from __future__ import annotations

import argparse
import json
import os.path as osp
import statistics
import sys
import time

REPO = osp.abspath(osp.join(osp.dirname(__file__), '..'))
sys.path.insert(0, REPO)


def _time(fn, steps: int, warmup: int, sync) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(steps):
        sync()
        t0 = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--size', type=int, default=512)
    p.add_argument('--batch', type=int, default=1)
    p.add_argument('--steps', type=int, default=5)
    p.add_argument('--warmup', type=int, default=1)
    p.add_argument('--threads', type=int, default=2)
    p.add_argument('--device', default='cpu')
    p.add_argument('--json', default=None)
    args = p.parse_args(argv)

    import torch
    from transformers.models.mask2former.modeling_mask2former import multi_scale_deformable_attention as hf_msda

    from ovseg.models.layers import multi_scale_deformable_attn
    from ovseg.models.pixel_decoders import MSDeformAttnPixelDecoder

    torch.set_num_threads(args.threads)
    dev = torch.device(args.device)
    sync = torch.cuda.synchronize if dev.type == 'cuda' else (lambda: None)
    shapes = [(args.size // s, args.size // s) for s in (32, 16, 8)]
    s = sum(h * w for h, w in shapes)
    heads, dim, points = 8, 32, 4
    g = torch.Generator().manual_seed(0)
    value = torch.randn(args.batch, s, heads, dim, generator=g).to(dev)
    loc = torch.rand(args.batch, s, heads, 3, points, 2, generator=g).to(dev)
    attn = torch.rand(args.batch, s, heads, 3, points, generator=g).softmax(-1).to(dev)
    result = dict(device=str(dev), size=args.size, batch=args.batch, queries=s, threads=args.threads)
    for name, fn in (('ovseg', multi_scale_deformable_attn), ('transformers', hf_msda)):
        with torch.no_grad():
            result[f'{name}_fwd_s'] = _time(lambda fn=fn: fn(value, shapes, loc, attn), args.steps,
                                            args.warmup, sync)
        grads_in = tuple(t.clone().requires_grad_(True) for t in (value, loc, attn))

        def fwd_bwd(fn=fn, v=grads_in[0], lc=grads_in[1], a=grads_in[2]):
            fn(v, shapes, lc, a).sum().backward()
        result[f'{name}_fwd_bwd_s'] = _time(fwd_bwd, args.steps, args.warmup, sync)
    with torch.no_grad():
        diff = (multi_scale_deformable_attn(value, shapes, loc, attn) - hf_msda(value, shapes, loc, attn)).abs()
    result['max_abs_diff'] = float(diff.max())

    dec = MSDeformAttnPixelDecoder(in_channels=[192, 384, 768, 1536]).to(dev).eval()
    feats = {f'res{i + 2}': torch.randn(args.batch, c, args.size // (4 * 2 ** i), args.size // (4 * 2 ** i),
                                        device=dev) for i, c in enumerate((192, 384, 768, 1536))}
    with torch.no_grad():
        result['pixel_decoder_fwd_s'] = _time(lambda: dec(feats), args.steps, args.warmup, sync)
    print(json.dumps(result, indent=2))
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(result, f, indent=2)
    return result


if __name__ == '__main__':
    main()
