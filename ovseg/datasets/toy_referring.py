"""ToyScenes referring expressions: RefCOCO-style data generated in seconds on a CPU, read by :class:`RefCocoDataset`.

Why: the referring-segmentation stack (dataset, model, metric, tools) needs a tiny dataset that a CPU model can learn
in minutes, with expressions that are unambiguous by construction. Every visible ToyScenes thing (ball, box, sign,
ring, star, cross; stuff too with ``include_stuff``) gets attribute words: colour (per class, e.g. "red ball"), size
("large"/"small", from its visible area), horizontal ("on the left"/"in the middle"/"on the right", from its
centroid's third of the image) and vertical position ("at the top"/"at the bottom"). Templates combine them ("the
star", "the red ball on the left", "the large box", "the object at the top"...). An expression is kept only if it
singles out exactly one segment of the image: the target must satisfy every word strictly and no other segment may
satisfy them even loosely (positions shifted by ``margin`` of the image side, area thresholds by
``AREA_SLACK``), so borderline look-alikes count as matches. Dropped ambiguous expressions and objects left with
no unique expression are counted in ``meta.json`` and logged. Choice among the unique expressions of an object is
seeded per (seed, split, image, segment): output is byte-identical for given parameters.

Layout written under ``<toy_root>/referring/`` (REFER's, with JSON refs instead of a pickle)::

    refs(toy).json        [{ref_id, ann_id, image_id, category_id, split, file_name, sent_ids,
                            sentences: [{raw, sent, sent_id, tokens}]}]
    instances.json        COCO instances of every ToyScenes segment (things and stuff), RLE segmentation;
                          images of both splits (id = split code * 1e6 + index, file_name '<split>/000000.png')
    refseg_gt_<split>.json  eval_refseg.py GT: {"annotations": [{sent_id, image_id, segmentation}]}
    meta.json             parameters and counts (written last: marks a complete copy)
"""
from __future__ import annotations

if __name__ == '__main__':  # `python -m ovseg.datasets.toy_referring`: hand over to the registered module (as
    # toy_scenes does) instead of running this body, and registering its classes, a second time.
    from ovseg.datasets.toy_referring import cli
    cli()

import argparse
import json
import os
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from mmengine.logging import print_log

from ovseg.cli import run_tool
from ovseg.evaluation.functional.referring import ReferringStats, referring_image_stats, referring_summary
from ovseg.registry import DATASETS
from ovseg.structures.panoptic_format import read_panoptic_png
from ovseg.utils.atomic_io import atomic_write_bytes, build_dir_atomically

from .refer import grounding_refseg_gt, refer_grounding_json
from .referring import RefCocoDataset, decode_rle, load_refs_file
from .toy_scenes import SPLIT_CODES, _file_lock, ensure_toy_scenes, with_defaults

__all__ = ['REFERRING_DIR', 'REFERRING_DEFAULTS', 'COLOUR_WORDS', 'ToySegment', 'describe_segments',
           'generate_toy_referring', 'ensure_toy_referring', 'toy_trivial_baselines', 'ToyReferringDataset']

REFERRING_VERSION = 1
REFERRING_DIR = 'referring'
REFS_FILE = 'refs(toy).json'
#: Image ids of the shared instances.json: ``SPLIT_CODES[split] * IMAGE_ID_STRIDE + index`` (unique across splits).
IMAGE_ID_STRIDE = 1_000_000

#: Colour word of each ToyScenes class (its ``ToyClass.color``: ball (220, 40, 40) is red, ...).
COLOUR_WORDS = {'ball': 'red', 'box': 'blue', 'sign': 'yellow', 'ring': 'purple', 'star': 'orange',
                'cross': 'white', 'sky': 'blue', 'wall': 'brown', 'grass': 'green', 'water': 'dark blue',
                'sand': 'beige'}
#: Visible-area fractions of the image for "small" / "large": about the 22nd / 70th percentile of thing areas in a
#: default ToyScenes copy (128x128, seed 0), so both words occur often.
SMALL_AREA, LARGE_AREA = 0.022, 0.05
#: A look-alike "could be" large if its area is >= LARGE_AREA / AREA_SLACK (small: <= SMALL_AREA * AREA_SLACK).
AREA_SLACK = 1.25

REFERRING_DEFAULTS: dict[str, Any] = dict(seed=0, expressions_per_object=2, margin=0.05, include_stuff=False)

# Templates: attribute slots in phrase order; 'object' is the class-agnostic noun.
TEMPLATES: tuple[tuple[str, ...], ...] = (
    ('noun',), ('colour', 'noun'), ('size', 'noun'), ('noun', 'hpos'), ('noun', 'vpos'),
    ('colour', 'noun', 'hpos'), ('size', 'colour', 'noun'), ('object', 'hpos'), ('object', 'vpos'),
    ('size', 'object'))
_HPOS_PHRASE = {'left': 'on the left', 'middle': 'in the middle', 'right': 'on the right'}
_VPOS_PHRASE = {'top': 'at the top', 'bottom': 'at the bottom'}


@dataclass(frozen=True)
class ToySegment:
    """One segment as the expression generator sees it: class name, thing flag, centroid (x, y as fractions of
    the width / height) and visible area as a fraction of the image."""

    seg_id: int
    name: str
    isthing: bool
    cx: float
    cy: float
    area: float


# ---------------------------------------------------------------------------------------------------- words
def _hpos(s: ToySegment, slack: float) -> set[str]:
    """Horizontal words ``s`` satisfies; ``slack`` > 0 widens every region (the "could be" test)."""
    out = set()
    if s.cx < 1 / 3 + slack:
        out.add('left')
    if s.cx > 2 / 3 - slack:
        out.add('right')
    if 1 / 3 - slack <= s.cx <= 2 / 3 + slack:
        out.add('middle')
    return out


def _vpos(s: ToySegment, slack: float) -> set[str]:
    out = set()
    if s.cy < 1 / 3 + slack:
        out.add('top')
    if s.cy > 2 / 3 - slack:
        out.add('bottom')
    return out


def _size(s: ToySegment, loose: bool) -> set[str]:
    f = AREA_SLACK if loose else 1.0
    out = set()
    if s.area >= LARGE_AREA / f:
        out.add('large')
    if s.area <= SMALL_AREA * f:
        out.add('small')
    return out


def _words(s: ToySegment, margin: float, loose: bool) -> dict[str, set[str]]:
    slack = margin if loose else 0.0
    return {'noun': {s.name}, 'colour': {COLOUR_WORDS[s.name]}, 'object': {'object'} if s.isthing else set(),
            'size': _size(s, loose) if s.isthing else set(), 'hpos': _hpos(s, slack), 'vpos': _vpos(s, slack)}


def _phrase(template: Sequence[str], choice: Mapping[str, str]) -> str:
    words = ['the']
    for slot in template:
        if slot == 'hpos':
            words.append(_HPOS_PHRASE[choice[slot]])
        elif slot == 'vpos':
            words.append(_VPOS_PHRASE[choice[slot]])
        else:
            words.append(choice[slot])
    return ' '.join(words)


def describe_segments(segments: Sequence[ToySegment], margin: float = REFERRING_DEFAULTS['margin']
                      ) -> tuple[dict[int, list[str]], int]:
    """Unique expressions of every segment (template order) and the number of ambiguous ones dropped.

    A template instance (the target's own strict words for each slot) is kept when no other segment has all those
    words under the loose test; otherwise it is dropped and counted. Stuff segments only take noun / colour
    templates (one segment per stuff class in ToyScenes, so these are unique).
    """
    strict = {s.seg_id: _words(s, margin, loose=False) for s in segments}
    loose = {s.seg_id: _words(s, margin, loose=True) for s in segments}
    out: dict[int, list[str]] = {}
    dropped = 0
    for s in segments:
        phrases: list[str] = []
        for template in TEMPLATES:
            if not s.isthing and any(slot not in ('noun', 'colour') for slot in template):
                continue
            options = [sorted(strict[s.seg_id][slot]) for slot in template]
            if any(len(o) != 1 for o in options):  # the target lacks the word (e.g. neither large nor small)
                continue
            choice = {slot: o[0] for slot, o in zip(template, options)}
            rivals = [t for t in segments if t.seg_id != s.seg_id
                      and all(choice[slot] in loose[t.seg_id][slot] for slot in template)]
            if rivals:
                dropped += 1
                continue
            phrases.append(_phrase(template, choice))
        out[s.seg_id] = phrases
    return out, dropped


# ---------------------------------------------------------------------------------------------------- generation
def _normalise(**params: Any) -> dict[str, Any]:
    p = with_defaults(params, REFERRING_DEFAULTS, 'ToyScenes referring')
    if isinstance(p['expressions_per_object'], bool) or not isinstance(p['expressions_per_object'], int) \
            or p['expressions_per_object'] < 1:
        raise ValueError(f"expressions_per_object must be a positive integer, got {p['expressions_per_object']!r}")
    if not 0 <= float(p['margin']) < 1 / 6:
        raise ValueError(f"margin must be in [0, 1/6) (a fraction of the image side), got {p['margin']!r}")
    return dict(seed=int(p['seed']), expressions_per_object=int(p['expressions_per_object']),
                margin=float(p['margin']), include_stuff=bool(p['include_stuff']))


def _encode(mask: np.ndarray) -> dict:
    from pycocotools import mask as mask_util
    rle = mask_util.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {'size': [int(v) for v in rle['size']], 'counts': rle['counts'].decode('ascii')}


def _dump(path: Path, obj: Any) -> None:
    atomic_write_bytes(path, json.dumps(obj, sort_keys=True, separators=(',', ':')).encode('utf-8'), sync_dir=False)


def generate_toy_referring(toy_root: str | os.PathLike, out_dir: str | os.PathLike | None = None,
                           **params: Any) -> dict[str, Any]:
    """Write refs, instances, per-split eval GT and ``meta.json`` for a complete ToyScenes copy; returns the meta.

    ``out_dir`` defaults to ``<toy_root>/referring``.
    """
    p = _normalise(**params)
    root = Path(toy_root)
    out = Path(out_dir) if out_dir is not None else root / REFERRING_DIR
    with open(root / 'meta.json', encoding='utf-8') as f:
        scenes_meta = json.load(f)
    images, anns, refs = [], [], []
    counts = {'objects': 0, 'refs': 0, 'sentences': 0, 'ambiguous_dropped': 0, 'unreferable_objects': 0}
    per_split: dict[str, dict[str, int]] = {}
    sent_id = 0
    categories = None
    for split in ('train', 'val'):
        ann_file = root / f'panoptic_{split}.json'
        if not ann_file.is_file():
            continue
        with open(ann_file, encoding='utf-8') as f:
            pan_json = json.load(f)
        cat_by_id = {int(c['id']): c for c in pan_json['categories']}
        if categories is None:  # the val split lists every class (train may drop novel ones)
            categories = pan_json['categories']
        elif len(pan_json['categories']) > len(categories):
            categories = pan_json['categories']
        split_counts = {'refs': 0, 'sentences': 0}
        for pan_ann in pan_json['annotations']:
            idx = int(pan_ann['image_id'])
            pan = read_panoptic_png(str(root / f'panoptic_{split}' / pan_ann['file_name']))
            h, w = pan.shape
            image_id = SPLIT_CODES[split] * IMAGE_ID_STRIDE + idx
            file_name = f"{split}/{pan_ann['file_name']}"
            images.append(dict(id=image_id, file_name=file_name, height=h, width=w))
            segments, ann_of = [], {}
            for seg in pan_ann['segments_info']:
                mask = pan == int(seg['id'])
                if not mask.any():
                    continue
                cat = cat_by_id[int(seg['category_id'])]
                ys, xs = np.nonzero(mask)
                ann_id = len(anns) + 1
                anns.append(dict(id=ann_id, image_id=image_id, category_id=int(cat['id']), iscrowd=0,
                                 area=int(mask.sum()), bbox=[float(v) for v in seg['bbox']],
                                 segmentation=_encode(mask)))
                ann_of[int(seg['id'])] = (ann_id, int(cat['id']))
                segments.append(ToySegment(int(seg['id']), str(cat['name']), bool(cat.get('isthing', 0)),
                                           float(xs.mean() + 0.5) / w, float(ys.mean() + 0.5) / h,
                                           float(mask.sum()) / (h * w)))
            described = [s for s in segments if s.isthing or p['include_stuff']]
            phrases, dropped = describe_segments(segments, p['margin'])
            counts['ambiguous_dropped'] += dropped
            for s in described:
                counts['objects'] += 1
                options = phrases[s.seg_id]
                if not options:
                    counts['unreferable_objects'] += 1
                    continue
                rng = np.random.default_rng(np.random.SeedSequence([p['seed'], SPLIT_CODES[split], idx, s.seg_id]))
                k = min(p['expressions_per_object'], len(options))
                chosen = sorted(rng.choice(len(options), size=k, replace=False).tolist())
                sentences = []
                for c in chosen:
                    sent_id += 1
                    text = options[c]
                    sentences.append(dict(raw=text[0].upper() + text[1:], sent=text, sent_id=sent_id,
                                          tokens=text.split()))
                ann_id, cat_id = ann_of[s.seg_id]
                refs.append(dict(ref_id=len(refs) + 1, ann_id=ann_id, image_id=image_id, category_id=cat_id,
                                 split=split, file_name=file_name, sent_ids=[x['sent_id'] for x in sentences],
                                 sentences=sentences))
                split_counts['refs'] += 1
                split_counts['sentences'] += len(sentences)
        per_split[split] = split_counts
        counts['refs'] += split_counts['refs']
        counts['sentences'] += split_counts['sentences']
    if not refs:
        raise ValueError(f'{root}: no referable object in any split (is it a ToyScenes copy?)')
    instances = dict(info=dict(description='ToyScenes referring', version=REFERRING_VERSION), images=images,
                     annotations=anns, categories=categories)
    out.mkdir(parents=True, exist_ok=True)
    _dump(out / REFS_FILE, refs)
    _dump(out / 'instances.json', instances)
    for split, c in per_split.items():
        if c['refs']:
            gt = grounding_refseg_gt(refer_grounding_json(refs, instances, split, source=str(out / 'instances.json')),
                                     source=str(out / REFS_FILE))
            _dump(out / f'refseg_gt_{split}.json', gt)
    meta = dict(referring_version=REFERRING_VERSION, params=p, toy_scenes=scenes_meta, counts=counts,
                per_split=per_split)
    atomic_write_bytes(out / 'meta.json', json.dumps(meta, sort_keys=True, indent=1).encode('utf-8'))
    return meta


def _check_meta(folder: Path, p: dict, scenes_meta: dict) -> dict:
    with open(folder / 'meta.json', encoding='utf-8') as f:
        meta = json.load(f)
    expected = dict(referring_version=REFERRING_VERSION, params=p, toy_scenes=scenes_meta)
    diff = [k for k in expected if meta.get(k) != expected[k]]
    if diff:
        raise ValueError(f'{folder} holds ToyScenes referring data generated differently ({", ".join(diff)} differ: '
                         f'on disk {[meta.get(k) for k in diff]!r} vs requested {[expected[k] for k in diff]!r}); '
                         'delete it to regenerate')
    return meta


def ensure_toy_referring(toy_root: str | os.PathLike, **params: Any) -> dict[str, Any]:
    """Generate ``<toy_root>/referring`` unless a complete copy with the same parameters exists; returns its meta.

    Safe with several processes (DDP ranks): an exclusive lock serialises them, data is written to a temporary
    sibling and renamed; a copy made with other parameters (or for other scenes) raises instead of being reused.
    """
    p = _normalise(**params)
    root = Path(toy_root)
    if not (root / 'meta.json').is_file():
        raise FileNotFoundError(f'{root}: no ToyScenes copy (meta.json missing); run ensure_toy_scenes first')
    with open(root / 'meta.json', encoding='utf-8') as f:
        scenes_meta = json.load(f)
    folder = root / REFERRING_DIR
    if (folder / 'meta.json').is_file():
        return _check_meta(folder, p, scenes_meta)
    with _file_lock(root / f'.{REFERRING_DIR}.lock'):
        if (folder / 'meta.json').is_file():
            return _check_meta(folder, p, scenes_meta)
        if folder.exists() and any(folder.iterdir()):
            raise FileExistsError(f'{folder} exists but is not complete (no meta.json); delete it to regenerate')
        meta = build_dir_atomically(folder, lambda tmp: generate_toy_referring(root, tmp, **p))
    c = meta['counts']
    print_log(f"ToyScenes referring {folder}: {c['refs']} refs, {c['sentences']} expressions for {c['objects']} "
              f"objects; dropped {c['ambiguous_dropped']} ambiguous expressions, {c['unreferable_objects']} objects "
              'without a unique expression', logger='current')
    return meta


# ---------------------------------------------------------------------------------------------------- baseline
def toy_trivial_baselines(toy_root: str | os.PathLike, split: str = 'val') -> dict[str, dict[str, float]]:
    """cIoU / gIoU (fractions) of answering every expression of ``split`` with a mask that ignores the words.

    ``whole_image``: every pixel; ``largest_segment``: the image's largest GT segment (things and stuff);
    ``largest_thing``: its largest GT thing (knows the answer is an object, not which). Scored with the metric's
    own :func:`referring_image_stats`; a trained model should beat the best of them.
    """
    folder = Path(toy_root) / REFERRING_DIR
    refs = [r for r in load_refs_file(folder / REFS_FILE) if r['split'] == split]
    if not refs:
        raise ValueError(f'{folder / REFS_FILE}: no refs in split {split!r}')
    with open(folder / 'instances.json', encoding='utf-8') as f:
        instances = json.load(f)
    things = {int(c['id']) for c in instances['categories'] if c.get('isthing')}
    by_image: dict[Any, list[dict]] = {}
    for a in instances['annotations']:
        by_image.setdefault(a['image_id'], []).append(a)
    ann_by_id = {a['id']: a for a in instances['annotations']}
    refs_by_image: dict[Any, list[dict]] = {}
    for r in refs:
        refs_by_image.setdefault(r['image_id'], []).append(r)
    pickers: dict[str, Callable[[list[dict], tuple[int, int]], np.ndarray]] = {
        'whole_image': lambda anns, hw: np.ones(hw, dtype=bool),
        'largest_segment': lambda anns, hw: decode_rle(max(anns, key=lambda a: a['area'])['segmentation']),
        'largest_thing': lambda anns, hw: _largest(anns, hw, things),
    }
    totals = {name: ReferringStats() for name in pickers}
    for image_id, image_refs in refs_by_image.items():
        gts = [decode_rle(ann_by_id[r['ann_id']]['segmentation']) for r in image_refs for _ in r['sentences']]
        hw = gts[0].shape
        for name, pick in pickers.items():
            pred = pick(by_image[image_id], hw)
            totals[name] += referring_image_stats([pred] * len(gts), gts, image_id=image_id)
    return {name: {k: float(v) for k, v in referring_summary(stats).items()} for name, stats in totals.items()}


def _largest(anns: list[dict], hw: tuple[int, int], categories: set[int]) -> np.ndarray:
    """Mask of the largest annotation of ``categories`` (all-False when the image has none)."""
    candidates = [a for a in anns if a['category_id'] in categories]
    if not candidates:
        return np.zeros(hw, dtype=bool)
    return decode_rle(max(candidates, key=lambda a: a['area'])['segmentation'])


# ---------------------------------------------------------------------------------------------------- dataset
@DATASETS.register_module()
class ToyReferringDataset(RefCocoDataset):
    """ToyScenes referring expressions as a :class:`RefCocoDataset` (same samples, fields and bad-record rules).

    Args:
        data_root: the ToyScenes folder (default ``data/toy_scenes``, as :class:`ToyScenesDataset`).
        split: ``'train'`` or ``'val'``.
        generate: ``True`` / ``dict(...)`` of ToyScenes parameters to create the scenes when absent; ``False``
            requires existing data.
        referring: expression-generator parameters (:data:`REFERRING_DEFAULTS`).
        Other args as :class:`RefCocoDataset` (``group``, ``text``, ``pipeline``, ``test_mode``...).
    """

    def __init__(self, data_root: str = 'data/toy_scenes', split: str = 'train', generate: bool | dict = True,
                 referring: dict | None = None, **kwargs: Any) -> None:
        if split not in SPLIT_CODES:
            raise ValueError(f"split must be 'train' or 'val', got {split!r}")
        if generate is not False:
            ensure_toy_scenes(data_root, **(generate if isinstance(generate, dict) else {}))
        if generate is not False or referring is not None:
            ensure_toy_referring(data_root, **(referring or {}))
        elif not (Path(data_root) / REFERRING_DIR / 'meta.json').is_file():
            raise FileNotFoundError(f'{Path(data_root) / REFERRING_DIR}: no ToyScenes referring data (generate=False)')
        super().__init__(data_root=data_root, dataset=REFERRING_DIR, split_by='toy', split=split, img_prefix='images',
                         refs_file=REFS_FILE, **kwargs)


def toy_referring_words() -> list[str]:
    """Every word a ToyScenes referring expression can contain (a word-level tokenizer for CPU toys needs no
    other vocabulary for the expressions)."""
    from .toy_scenes import CLASS_NAMES
    phrases = ['the', 'object', 'small', 'large', *CLASS_NAMES, *COLOUR_WORDS.values(), *_HPOS_PHRASE.values(),
               *_VPOS_PHRASE.values()]
    return sorted({w for p in phrases for w in p.split()})


# ---------------------------------------------------------------------------------------------------- CLI
def main(argv: list[str] | None = None) -> int:
    """Generate ToyScenes + referring expressions and print the counts and the trivial baselines."""
    parser = argparse.ArgumentParser(description='Generate ToyScenes referring expressions (RefCOCO layout).')
    parser.add_argument('data_root', nargs='?', default='data/toy_scenes', help='ToyScenes folder')
    parser.add_argument('--num-train', type=int, default=None, help='ToyScenes train images (default: its own)')
    parser.add_argument('--num-val', type=int, default=None, help='ToyScenes val images (default: its own)')
    parser.add_argument('--seed', type=int, default=REFERRING_DEFAULTS['seed'], help='expression choice seed')
    parser.add_argument('--expressions-per-object', type=int, default=REFERRING_DEFAULTS['expressions_per_object'])
    parser.add_argument('--margin', type=float, default=REFERRING_DEFAULTS['margin'])
    parser.add_argument('--include-stuff', action='store_true', help='also refer to stuff regions ("the sky")')
    args = parser.parse_args(argv)
    start = time.perf_counter()
    scene_params = {k: v for k, v in (('num_train', args.num_train), ('num_val', args.num_val)) if v is not None}
    ensure_toy_scenes(args.data_root, **scene_params)
    meta = ensure_toy_referring(args.data_root, seed=args.seed, expressions_per_object=args.expressions_per_object,
                                margin=args.margin, include_stuff=args.include_stuff)
    print(json.dumps({'counts': meta['counts'], 'per_split': meta['per_split']}, sort_keys=True))
    for split in meta['per_split']:
        if not meta['per_split'][split]['refs']:
            continue
        for name, res in toy_trivial_baselines(args.data_root, split).items():
            print(f"{split} baseline {name}: cIoU {100 * res['cIoU']:.2f} gIoU {100 * res['gIoU']:.2f} "
                  f"({res['num_expressions']:.0f} expressions)")
    print(f'ToyScenes referring ready in {Path(args.data_root) / REFERRING_DIR} ({time.perf_counter() - start:.1f}s)',
          file=sys.stderr)
    return 0


def cli() -> None:
    """``python -m ovseg.datasets.toy_referring``: ``main`` with one-line errors (``--debug`` for the traceback)."""
    run_tool(main)


if __name__ == '__main__':
    cli()
