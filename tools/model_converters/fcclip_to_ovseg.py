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

from ovseg.models.utils.checkpoint_convert import (MODEL_EMBED_DIMS, UnsafeCheckpointError,  # noqa: E402
                                                   convert_checkpoint_file)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Convert an official FC-CLIP checkpoint to ovseg names')
    parser.add_argument('src', help='official checkpoint (.pth/.pkl loaded weights-only, or .safetensors)')
    parser.add_argument('dst', help='output .pth for mmengine load_from')
    parser.add_argument('--model', choices=sorted(MODEL_EMBED_DIMS), default=None,
                        help='released model, to check the CLIP embedding width')
    parser.add_argument('--strict', action='store_true',
                        help='fail on unmatched keys, unknown inner names or a width mismatch')
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        report = convert_checkpoint_file(args.src, args.dst, model=args.model, strict=args.strict)
    except UnsafeCheckpointError as exc:
        print(f'ERROR: {exc}', file=sys.stderr)
        return 2
    except ValueError as exc:
        print(f'ERROR: {exc}', file=sys.stderr)
        return 1
    print(report.summary())
    print(f'saved {args.dst}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
