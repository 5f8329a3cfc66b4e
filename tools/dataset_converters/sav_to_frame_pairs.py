"""SA-V (official ``{video_id}_<type>.json`` + ``{video_id}.mp4``) → npz frame pairs, one file per pair.

    python tools/dataset_converters/sav_to_frame_pairs.py --data-root data/sav/sav_train/sav_000 \
        --out data/sav_frame_pairs [--masklet-types manual auto] [--max-pairs-per-masklet 2] [--frame-gap 8]

Why: decoding H.264 mp4 and SA-V's large JSONs per sample costs far more than reading one small npz; converting the
pairs once makes SA-V mask-caption training data-loader light (``SAVFramePairNpzDataset``). The masklet index,
the JSON parsing, the frame reader and the pair decoding are the ones of ``SAVMaskletDataset``
(``projects/sa2va_sft/sa2va_sft/region_data/sav.py``), so a pair converted here is exactly what that dataset loads
for the same two frames; each video is opened once for all its pairs.

Pairs of a masklet: among its valid annotated frames (object visible), every (earlier, later) pair at most
``--frame-gap`` annotated frames apart (default: any), of which ``--max-pairs-per-masklet`` are drawn (seeded by
``--seed`` and the record, so reruns write the same files). Frame A is the earlier frame; use the dataset's
``random_order`` to swap at load. Output: ``<out>/<video key>/<type>_<object>_<frame A>_<frame B>.npz`` (video
frame numbers). Masklets without a valid pair (empty mask, too few frames, none within the gap) and masklets of
missing or unreadable videos are skipped and counted in the summary printed (and returned) at the end.
"""
from __future__ import annotations

import argparse
import json
import os.path as osp
import sys
import zlib
from collections import Counter

import numpy as np

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, osp.abspath(osp.join(osp.dirname(__file__), '..', '..')))
from common import progress  # noqa: E402

from ovseg.cli import run_tool  # noqa: E402
from ovseg.datasets.referring import ReferringRecordError  # noqa: E402
from projects.sa2va_sft.sa2va_sft.region_data.sav import (  # noqa: E402
    SAV_FRAME_STRIDE,
    SAVMaskletDataset,
    frame_pair_candidates,
    load_sav_pair,
    read_sav_json,
    read_video_frames,
    write_frame_pair_npz,
)


def choose_pairs(record: dict, max_pairs: int, frame_gap: int | None, seed: int) -> list[tuple[int, int]]:
    """Up to ``max_pairs`` (earlier, later) annotated-frame pairs of a masklet, drawn without replacement with a
    generator seeded by ``seed`` and the record (stable across runs and independent of the other records)."""
    cands = frame_pair_candidates(record['valid_frames'], frame_gap, allow_same=False)
    if len(cands) <= max_pairs:
        return cands
    key = zlib.crc32(f"{record['video_key']}|{record['record_id']}".encode())
    rng = np.random.default_rng(np.random.SeedSequence([seed, key]))
    return [cands[i] for i in sorted(rng.choice(len(cands), size=max_pairs, replace=False).tolist())]


def pair_file(out: str, record: dict, frame_a: int, frame_b: int) -> str:
    stride = int(record['frame_stride'])
    return osp.join(out, record['video_key'], f"{record['masklet_type']}_{int(record['object_index']):03d}_"
                                              f'{frame_a * stride:05d}_{frame_b * stride:05d}.npz')


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description='SA-V JSON + mp4 → npz frame pairs (SAVFramePairNpzDataset)')
    parser.add_argument('--data-root', required=True, help='SA-V folder (e.g. data/sav/sav_train/sav_000)')
    parser.add_argument('--out', required=True, help='output folder of the npz pairs')
    parser.add_argument('--video-dir', default='', help='mp4 folder relative to --data-root (default: itself)')
    parser.add_argument('--ann-dir', default='', help='JSON folder relative to --data-root (default: itself)')
    parser.add_argument('--masklet-types', nargs='+', default=['manual'], choices=('manual', 'auto'))
    parser.add_argument('--video-ids', default=None, help='text file of video ids to convert (default: all)')
    parser.add_argument('--recursive', action='store_true', help='find JSONs in sub-folders (sav_000/ ...)')
    parser.add_argument('--frame-stride', type=int, default=SAV_FRAME_STRIDE,
                        help='video frames per annotated frame (SA-V: 4)')
    parser.add_argument('--max-pairs-per-masklet', type=int, default=1, help='pairs written per masklet')
    parser.add_argument('--frame-gap', type=int, default=None,
                        help='largest distance between the two frames, in annotated frames (default: any)')
    parser.add_argument('--seed', type=int, default=0, help='seed of the pair choice')
    parser.add_argument('--sequential-decode', action='store_true',
                        help='decode videos from the start instead of seeking (for codecs with inexact seeks)')
    args = parser.parse_args(argv)
    if args.max_pairs_per_masklet < 1:
        parser.error('--max-pairs-per-masklet must be >= 1')
    if args.frame_gap is not None and args.frame_gap < 1:
        parser.error('--frame-gap must be >= 1 annotated frame')
    dataset = SAVMaskletDataset(data_root=args.data_root, video_dir=args.video_dir, ann_dir=args.ann_dir,
                                masklet_types=tuple(args.masklet_types), video_ids=args.video_ids,
                                recursive=args.recursive, frame_stride=args.frame_stride,
                                max_frame_gap=args.frame_gap, sequential_decode=args.sequential_decode,
                                on_bad_record='skip', serialize_data=False)
    by_video: dict[str, list[dict]] = {}
    for i in range(len(dataset)):
        record = dataset.get_data_info(i)
        by_video.setdefault(record['video_path'], []).append(record)
    skipped = Counter(dataset.skipped)
    written = masklets = 0
    for video_path, records in progress(by_video.items(), len(by_video), 'SA-V videos → npz pairs'):
        plans = [(r, choose_pairs(r, args.max_pairs_per_masklet, args.frame_gap, args.seed)) for r in records]
        needed = sorted({k * args.frame_stride for _, pairs in plans for pair in pairs for k in pair})
        try:
            frames = dict(zip(needed, read_video_frames(video_path, needed, f'{video_path}',
                                                        sequential=args.sequential_decode)))
        except ReferringRecordError as e:
            print(f'\nskipping {len(records)} masklet(s): {e}', file=sys.stderr)
            skipped[e.reason] += len(records)
            continue
        docs: dict[str, dict] = {}
        for record, pairs in plans:
            try:
                doc = docs.get(record['json_path']) or docs.setdefault(record['json_path'],
                                                                       read_sav_json(record['json_path']))
                for a, b in pairs:
                    out = load_sav_pair(record, a, b, doc=doc, frames=frames)
                    write_frame_pair_npz(pair_file(args.out, record, a, b), [out['img'], out['img2']],
                                         [out['region_mask'], out['region_mask2']], out['frame_indices'],
                                         record['video_id'], record['object_index'])
                    written += 1
            except ReferringRecordError as e:
                print(f'\nskipping a masklet: {e}', file=sys.stderr)
                skipped[e.reason] += 1
                continue
            masklets += 1
    summary = dict(videos=len(by_video), masklets=masklets, pairs=written, skipped=dict(sorted(skipped.items())),
                   out=args.out)
    print(json.dumps(summary, sort_keys=True))
    return summary


if __name__ == '__main__':
    run_tool(main)
