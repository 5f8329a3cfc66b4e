"""Convert a released FC-CLIP checkpoint (detectron2 ``{'model': state_dict}``) to an ovseg checkpoint.

    python tools/model_converters/fcclip_to_ovseg.py fcclip_cocopan.pth fcclip_convnext_large_ovseg.pth \
        --model convnext_large [--strict]

The output is ``{'state_dict': ..., 'meta': {...}}`` for ``load_from`` in an mmengine config. The prefix map
and the safe (no pickled code) loading live in :mod:`ovseg.models.utils.checkpoint_convert`. The text tower
and CLIP ``logit_scale`` are not in the released files (FC-CLIP issues #14/#34/#37): they come from open_clip
when the backbone is built with its pretrained tag, so they are reported as *expected missing*.
"""
from __future__ import annotations

import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.abspath(osp.join(osp.dirname(__file__), '..', '..')))

from ovseg.cli import run_tool  # noqa: E402
from ovseg.models.utils.checkpoint_convert import MODEL_EMBED_DIMS, convert_checkpoint_file  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Convert an official FC-CLIP checkpoint to ovseg names')
    parser.add_argument('src', help='official checkpoint (.pth/.pkl loaded weights-only, or .safetensors)')
    parser.add_argument('dst', help='output .pth for mmengine load_from')
    parser.add_argument('--model', choices=sorted(MODEL_EMBED_DIMS), default=None,
                        help='released model, to check the CLIP embedding width')
    parser.add_argument('--strict', action='store_true',
                        help='fail on unmatched keys, unknown inner names or a width mismatch')
    parser.add_argument('--allow-partial', action='store_true',
                        help='write the output even when a part of FC-CLIP (backbone, pixel decoder, decoder, '
                        'class head) has no tensor in the source')
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    report = convert_checkpoint_file(args.src, args.dst, model=args.model, strict=args.strict,
                                     allow_partial=args.allow_partial)
    print(report.summary())
    print(f'saved {args.dst}')
    return 0


if __name__ == '__main__':
    run_tool(main)  # one-line user errors; --debug or OVSEG_DEBUG=1 shows the traceback
