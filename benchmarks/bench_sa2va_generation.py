"""Sa2VA inference: ovseg's greedy loop with [SEG] states vs transformers' ``generate`` as Sa2VA's
``predict_forward`` calls it (``output_hidden_states=True, return_dict_in_generate=True``), side by side.

Same tiny Qwen2 (2 layers, hidden 64), same prompt embeddings, runs alternating; prints median ms per generated
token of each, the ratio, and whether both produced the same ids.

    python benchmarks/bench_sa2va_generation.py [--prompt 300] [--new 128] [--repeats 7]
"""
from __future__ import annotations

import argparse
import os.path as osp
import statistics
import sys
import time

import torch

sys.path.insert(0, osp.abspath(osp.join(osp.dirname(__file__), '..')))

from projects.sa2va_sft.sa2va_sft.language_model import (  # noqa: E402
    TINY_QWEN2,
    build_language_model,
    greedy_generate_with_seg,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--prompt', type=int, default=300)
    parser.add_argument('--new', type=int, default=128)
    parser.add_argument('--repeats', type=int, default=7)
    parser.add_argument('--threads', type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    lm = build_language_model(dict(TINY_QWEN2, vocab_size=512)).eval()
    embeds = torch.randn(1, args.prompt, TINY_QWEN2['hidden_size'])
    never = 10_000  # no stop token: both generate exactly --new tokens

    def ours() -> torch.Tensor:
        return greedy_generate_with_seg(lm, embeds, None, seg_token_id=7, eos_token_ids=[never],
                                        max_new_tokens=args.new).sequences

    def theirs() -> torch.Tensor:
        out = lm.generate(inputs_embeds=embeds, attention_mask=torch.ones(1, args.prompt, dtype=torch.long),
                          max_new_tokens=args.new, min_new_tokens=args.new, do_sample=False, use_cache=True,
                          output_hidden_states=True, return_dict_in_generate=True, pad_token_id=0)
        return out.sequences

    times: dict[str, list[float]] = {'ours': [], 'generate': []}
    with torch.no_grad():
        same = torch.equal(ours()[0, :args.new], theirs()[0, -args.new:])  # warm-up + identity check
        for _ in range(args.repeats):
            for name, fn in (('ours', ours), ('generate', theirs)):
                start = time.perf_counter()
                fn()
                times[name].append((time.perf_counter() - start) * 1000 / args.new)
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f'prompt {args.prompt} tokens, {args.new} new tokens, {args.threads} thread(s), {args.repeats} repeats')
    print(f"ours      {med['ours']:.2f} ms/token")
    print(f"generate  {med['generate']:.2f} ms/token")
    print(f"ratio ours / generate = {med['ours'] / med['generate']:.2f}   same ids: {same}")


if __name__ == '__main__':
    main()
