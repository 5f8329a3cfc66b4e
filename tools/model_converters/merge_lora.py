"""Fold the LoRA adapters of a checkpoint into its base weights and restore the base key names.

    python tools/model_converters/merge_lora.py work_dirs/run/iter_1000.pth merged.pth [--export-lora lora.pth]

The checkpoint is loaded weights-only (a file can never execute code). ``OVSegRunner`` stores what the merge
needs besides the weights (per-layer scaling, adapter name, modules_to_save) in ``meta['lora']``; for other
checkpoints give ``--alpha`` (and ``--rslora`` if it was used) and the scaling is rebuilt from the ranks.
The output ``{'state_dict', 'meta'}`` loads with ``load_from`` into the model *without* the ``peft`` key.
"""
from __future__ import annotations

import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.abspath(osp.join(osp.dirname(__file__), '..', '..')))

import torch  # noqa: E402

import ovseg  # noqa: E402,F401  (allow-lists the non-tensor types of mmengine checkpoints)
from ovseg.cli import run_tool  # noqa: E402
from ovseg.models.peft.lora import infer_lora_metadata, merge_lora_state_dict  # noqa: E402
from ovseg.utils.checkpoint_io import load_checkpoint_file  # noqa: E402

LORA_ONLY = ('.lora_A.', '.lora_B.', '.lora_embedding_A.', '.lora_embedding_B.', '.modules_to_save.')


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Merge LoRA weights of a checkpoint into the base weights')
    parser.add_argument('src', help='checkpoint written while training with a LoRA `peft` config')
    parser.add_argument('dst', help='output .pth with merged weights and the original key names')
    parser.add_argument('--export-lora', metavar='PATH', help='also write the LoRA-only weights (+ meta) here')
    parser.add_argument('--alpha', type=float, help="LoRA alpha, for checkpoints without meta['lora']")
    parser.add_argument('--rslora', action='store_true', help='scaling alpha/sqrt(r) (with --alpha)')
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    ckpt = load_checkpoint_file(args.src)  # weights-only; empty / text / truncated files say so
    state_dict = ckpt.get('state_dict', ckpt) if isinstance(ckpt, dict) else None
    if not isinstance(state_dict, dict):
        print(f'ERROR: {args.src} holds no state dict', file=sys.stderr)
        return 1
    meta = dict(ckpt.get('meta', {})) if 'state_dict' in ckpt else {}
    lora_meta = meta.pop('lora', None)
    if args.alpha is not None:
        lora_meta = infer_lora_metadata(state_dict, args.alpha, args.rslora)
    if lora_meta is None:
        print(f"ERROR: {args.src} has no meta['lora'] (not written by OVSegRunner): give --alpha", file=sys.stderr)
        return 1
    if not lora_meta['layers'] and not lora_meta['modules_to_save']:
        print(f'ERROR: {args.src} holds no LoRA weights', file=sys.stderr)
        return 1
    try:
        merged = merge_lora_state_dict(state_dict, lora_meta)
    except (KeyError, ValueError) as exc:
        print(f'ERROR: {exc}', file=sys.stderr)
        return 1
    meta['merged_lora_from'] = osp.basename(args.src)
    torch.save(dict(state_dict=merged, meta=meta), args.dst)
    print(f"merged {len(lora_meta['layers'])} LoRA layers and {len(lora_meta['modules_to_save'])} "
          f'modules_to_save; {len(merged)} keys -> {args.dst}')
    if args.export_lora:
        lora = {k: v for k, v in state_dict.items() if any(s in k for s in LORA_ONLY)}
        torch.save(dict(state_dict=lora, meta=dict(lora=lora_meta)), args.export_lora)
        print(f'{len(lora)} LoRA tensors -> {args.export_lora}')
    return 0


if __name__ == '__main__':
    run_tool(main)  # one-line user errors; --debug or OVSEG_DEBUG=1 shows the traceback
