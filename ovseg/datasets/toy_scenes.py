"""ToyScenes: a seeded procedural COCO-panoptic dataset that is generated in seconds on a CPU.

Why: tests, demos and open-vocabulary experiments need a panoptic dataset with things, stuff and a
base/novel class split without downloading anything. Scenes have textured stuff bands (sky or wall on top;
grass, water, sand below) and 1-4 coloured thing instances (ball, box, sign, ring, star, cross) that may
occlude one another. ``novel_classes`` are withheld from the training split (absent from its images, or
present but left unlabelled = VOID) and, by default, from its category list and vocabulary too, as in
FC-CLIP's train-on-base / test-on-all protocol. Output is byte-identical for a given set of parameters.

Layout written under ``out_dir``::

    images/{train,val}/000000.png     RGB images
    panoptic_{train,val}/000000.png   COCO panoptic PNGs (id = R + 256 G + 256² B)
    panoptic_{train,val}.json         images / annotations (segments_info with area, bbox) / categories
    semantic_{train,val}/000000.png   uint8 contiguous class per pixel (split's own categories), 255 = VOID
    toy_scenes.txt                    vocabulary of all classes; toy_scenes_train.txt: the train split's
    meta.json                         generation parameters (written last: marks a complete dataset)
"""
from __future__ import annotations

if __name__ == '__main__':  # `python -m ovseg.datasets.toy_scenes`: importing the package already loaded this
    # module (as ovseg.datasets.toy_scenes, its classes registered); running this file's body a second time
    # would register them twice. Hand over to the loaded module instead.
    from ovseg.datasets.toy_scenes import cli
    cli()

import argparse
import contextlib
import fcntl
import json
import os
import os.path as osp
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ovseg.cli import run_tool
from ovseg.registry import DATASETS
from ovseg.structures.panoptic_format import IGNORE_INDEX, write_panoptic_png
from ovseg.utils.atomic_io import build_dir_atomically
from ovseg.vocabulary import dump_vocabulary

from .coco_panoptic import CocoPanopticDataset
from .panoptic_utils import bbox_of_mask

GENERATOR_VERSION = 1


@dataclass(frozen=True)
class ToyClass:
    name: str
    synonyms: tuple[str, ...]
    isthing: bool
    color: tuple[int, int, int]
    kind: str  # thing: shape name; stuff: 'top' or 'bottom' band


CLASSES: tuple[ToyClass, ...] = (
    ToyClass('ball', ('ball', 'sphere', 'orb'), True, (220, 40, 40), 'circle'),
    ToyClass('box', ('box', 'cube', 'crate'), True, (40, 80, 220), 'square'),
    ToyClass('sign', ('sign', 'triangle sign', 'warning sign'), True, (245, 205, 20), 'triangle'),
    ToyClass('ring', ('ring', 'donut', 'hoop'), True, (170, 50, 210), 'ring'),
    ToyClass('star', ('star', 'starfish', 'five-pointed star'), True, (255, 140, 0), 'star'),
    ToyClass('cross', ('cross', 'plus sign', 'plus'), True, (245, 245, 245), 'cross'),
    ToyClass('sky', ('sky', 'clouds'), False, (120, 180, 240), 'top'),
    ToyClass('wall', ('wall', 'brick wall', 'bricks'), False, (150, 95, 75), 'top'),
    ToyClass('grass', ('grass', 'lawn', 'meadow'), False, (70, 150, 50), 'bottom'),
    ToyClass('water', ('water', 'sea', 'lake'), False, (30, 75, 150), 'bottom'),
    ToyClass('sand', ('sand', 'beach', 'desert'), False, (215, 195, 140), 'bottom'),
)
CLASS_NAMES = tuple(c.name for c in CLASSES)
NAME_TO_ID = {c.name: i + 1 for i, c in enumerate(CLASSES)}  # dataset category ids 1..11
SPLIT_CODES = {'train': 0, 'val': 1}

DEFAULTS: dict[str, Any] = dict(
    num_train=200, num_val=50, size=(128, 128), seed=0, novel_classes=(), novel_mode='absent',
    novel_in_train_vocab=False, min_things=1, max_things=4)


# --------------------------------------------------------------------------------------------- rendering
def _stuff_texture(cls: ToyClass, h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """Full-size float texture (H×W×3) of a stuff class: distinct colour and pattern per class."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    base = np.array(cls.color, dtype=np.float32)
    if cls.name == 'sky':  # vertical gradient + soft cloud blobs
        shade = 1.1 - 0.3 * yy / h
        clouds = cv2.GaussianBlur(rng.random((h, w), dtype=np.float32), (0, 0), sigmaX=max(2.0, w / 16))
        clouds = np.clip((clouds - clouds.mean()) * 12, 0, 1)
        img = base * shade[..., None] * (1 - clouds[..., None]) + 245 * clouds[..., None]
    elif cls.name == 'wall':  # bricks: mortar lines every 8 px, staggered joints
        row = (yy // 8).astype(int)
        mortar = (yy % 8 < 1) | (((xx + 8 * (row % 2)) % 16) < 1)
        img = base * (0.9 + 0.2 * rng.random((h, w, 1), dtype=np.float32))
        img[mortar] = (200, 200, 190)
    elif cls.name == 'grass':  # vertical blade streaks
        streak = rng.random((1, w), dtype=np.float32) * 0.5 + 0.75
        img = base * streak[..., None] * (0.85 + 0.3 * rng.random((h, w, 1), dtype=np.float32))
    elif cls.name == 'water':  # horizontal ripples
        phase = rng.uniform(0, 2 * np.pi)
        ripple = 0.85 + 0.25 * np.sin(0.9 * yy + 1.5 * np.sin(0.15 * xx + phase))
        img = base * ripple[..., None]
    else:  # sand: speckles
        img = base * (0.9 + 0.1 * rng.random((h, w, 1), dtype=np.float32))
        dots = rng.random((h, w)) < 0.04
        img[dots] *= 0.7
    return img


def _thing_mask(kind: str, cx: float, cy: float, r: float, angle: float, h: int, w: int) -> np.ndarray:
    """Boolean mask of one thing shape centred at (cx, cy) with radius ``r``."""
    mask = np.zeros((h, w), dtype=np.uint8)
    yy, xx = np.mgrid[0:h, 0:w]
    dist = np.hypot(xx - cx, yy - cy)
    if kind == 'circle':
        return dist <= r
    if kind == 'ring':
        return (dist <= r) & (dist >= 0.55 * r)
    if kind == 'square':
        pts = [(-0.75, -0.75), (0.75, -0.75), (0.75, 0.75), (-0.75, 0.75)]
    elif kind == 'triangle':
        pts = [(0.0, -1.0), (0.9, 0.65), (-0.9, 0.65)]
    elif kind == 'star':
        pts = [((1.0 if k % 2 == 0 else 0.42) * np.sin(k * np.pi / 5),
                -(1.0 if k % 2 == 0 else 0.42) * np.cos(k * np.pi / 5)) for k in range(10)]
    elif kind == 'cross':
        a, b = 0.3, 0.95
        pts = [(-a, -b), (a, -b), (a, -a), (b, -a), (b, a), (a, a), (a, b), (-a, b), (-a, a), (-b, a),
               (-b, -a),
               (-a, -a)]
    else:
        raise ValueError(f'unknown thing shape {kind!r}')
    c, s = np.cos(angle), np.sin(angle)
    poly = np.array([[cx + r * (px * c - py * s), cy + r * (px * s + py * c)] for px, py in pts])
    cv2.fillPoly(mask, [np.round(poly * 16).astype(np.int32)], 1, lineType=cv2.LINE_8, shift=4)
    return mask.astype(bool)


def render_scene(rng: np.random.Generator, size: tuple[int, int], things: list[int], tops: list[int],
                 bottoms: list[int], min_things: int, max_things: int
                 ) -> tuple[np.ndarray, list[tuple[int, np.ndarray]]]:
    """Draw one scene; returns the RGB image and ``[(class index, visible mask), ...]`` in paint order."""
    h, w = size
    yy, xx = np.mgrid[0:h, 0:w]
    layers: list[tuple[int, np.ndarray]] = []
    # Stuff: top band and bottom band (optionally split into two bottom classes) with wavy boundaries.
    top = int(rng.choice(tops))
    wobble = np.sin(xx[0] * rng.uniform(0.03, 0.12) + rng.uniform(0, 6))
    boundary = h * rng.uniform(0.3, 0.55) + h * 0.05 * wobble
    top_mask = yy < boundary[None, :]
    layers.append((top, top_mask))
    bottom_choices = list(rng.permutation(bottoms))
    if len(bottom_choices) > 1 and rng.random() < 0.5:
        split = boundary + (h - boundary) * rng.uniform(0.35, 0.65)
        lower = yy >= split[None, :]
        layers.append((int(bottom_choices[0]), ~top_mask & ~lower))
        layers.append((int(bottom_choices[1]), lower))
    else:
        layers.append((int(bottom_choices[0]), ~top_mask))
    img = np.zeros((h, w, 3), dtype=np.float32)
    for cls, mask in layers:
        img[mask] = _stuff_texture(CLASSES[cls], h, w, rng)[mask]
    # Things: painted back to front; instances occluded below a minimum visible area are dropped.
    min_area = max(12, int(0.002 * h * w))
    shapes = []
    for _ in range(int(rng.integers(min_things, max_things + 1)) if things else 0):
        cls = int(rng.choice(things))
        r = min(h, w) * rng.uniform(0.08, 0.2)
        cx, cy = rng.uniform(r * 0.6, w - r * 0.6), rng.uniform(r * 0.6, h - r * 0.6)
        full = _thing_mask(CLASSES[cls].kind, cx, cy, r, rng.uniform(-0.4, 0.4), h, w)
        jitter = rng.integers(-15, 16, size=3)
        shapes.append((cls, full, jitter, cx, cy, r))
    while True:
        visible = []
        for i, (cls, full, *_rest) in enumerate(shapes):
            vis = full.copy()
            for _, later, *_r in shapes[i + 1:]:
                vis &= ~later
            visible.append(vis)
        small = [i for i, v in enumerate(visible) if v.sum() < min_area]
        if not small:
            break
        shapes.pop(small[0])
    for cls, full, jitter, cx, cy, r in shapes:
        color = np.clip(np.array(CLASSES[cls].color) + jitter, 0, 255).astype(np.float32)
        shade = 1.05 - 0.25 * np.clip(np.hypot(xx - cx + 0.3 * r, yy - cy + 0.3 * r) / (1.6 * r), 0, 1)
        img[full] = color * shade[full][:, None]
    for vis, (cls, *_r) in zip(visible, shapes):
        layers.append((cls, vis))
    # Stuff masks lose the pixels covered by things.
    covered = np.zeros((h, w), dtype=bool)
    for vis in visible:
        covered |= vis
    n_stuff = len(layers) - len(visible)
    layers = [(c, m & ~covered) if i < n_stuff else (c, m) for i, (c, m) in enumerate(layers)]
    return np.clip(img + 0.5, 0, 255).astype(np.uint8), layers


# --------------------------------------------------------------------------------------------- writing
def with_defaults(params: dict[str, Any], defaults: dict[str, Any], what: str) -> dict[str, Any]:
    """``defaults`` updated by ``params``; an unknown key is a TypeError naming it and the valid ones (the
    generated toy datasets' parameter check)."""
    unknown = set(params) - set(defaults)
    if unknown:
        raise TypeError(f'unknown {what} parameter(s) {sorted(unknown)}; valid: {sorted(defaults)}')
    return {**defaults, **params}


def _normalise_params(**params: Any) -> dict[str, Any]:
    p = with_defaults(params, DEFAULTS, 'ToyScenes')
    size = p['size']
    p['size'] = [int(size), int(size)] if isinstance(size, int) else [int(v) for v in size]
    p['novel_classes'] = sorted(str(n) for n in p['novel_classes'])
    for n in p['novel_classes']:
        if n not in NAME_TO_ID:
            raise ValueError(f'novel class {n!r} is not a ToyScenes class; choose from {list(CLASS_NAMES)}')
    if p['novel_mode'] not in ('absent', 'unlabelled'):
        raise ValueError(f"novel_mode must be 'absent' or 'unlabelled', got {p['novel_mode']!r}")
    for group in ('top', 'bottom'):
        base = [c.name for c in CLASSES if c.kind == group and c.name not in p['novel_classes']]
        if not base and p['novel_mode'] == 'absent':
            raise ValueError(f"novel_classes leave no base '{group}' stuff class for training images")
    if not 1 <= p['min_things'] <= p['max_things']:
        raise ValueError('need 1 <= min_things <= max_things')
    for key in ('num_train', 'num_val'):
        if isinstance(p[key], bool) or not isinstance(p[key], int) or p[key] < 0:
            raise ValueError(f'{key} must be a non-negative integer, got {p[key]!r}')
    if p['num_train'] + p['num_val'] == 0:
        raise ValueError('num_train and num_val are both 0: nothing to generate')
    if min(p['size']) < 32:
        raise ValueError(f"size {p['size']} too small; use at least 32x32")
    for key in ('num_train', 'num_val', 'seed', 'min_things', 'max_things'):
        p[key] = int(p[key])
    p['novel_in_train_vocab'] = bool(p['novel_in_train_vocab'])
    return p


def _split_classes(p: dict, split: str) -> list[int]:
    """Class indices listed in a split's categories (train drops novel classes unless asked not to)."""
    if split == 'train' and not p['novel_in_train_vocab']:
        return [i for i, c in enumerate(CLASSES) if c.name not in p['novel_classes']]
    return list(range(len(CLASSES)))


def _write_png(path: str, rgb_or_gray: np.ndarray) -> None:
    arr = rgb_or_gray[..., ::-1] if rgb_or_gray.ndim == 3 else rgb_or_gray
    if not cv2.imwrite(path, np.ascontiguousarray(arr), [cv2.IMWRITE_PNG_COMPRESSION, 3]):
        raise OSError(f'cannot write {path}')


def _generate_split(out: Path, p: dict, split: str) -> None:
    count = p['num_train'] if split == 'train' else p['num_val']
    novel = {CLASS_NAMES.index(n) for n in p['novel_classes']} if split == 'train' else set()
    drawable = [i for i in range(len(CLASSES)) if not (i in novel and p['novel_mode'] == 'absent')]
    things = [i for i in drawable if CLASSES[i].isthing]
    tops = [i for i in drawable if CLASSES[i].kind == 'top']
    bottoms = [i for i in drawable if CLASSES[i].kind == 'bottom']
    listed = _split_classes(p, split)
    contiguous = {cls: k for k, cls in enumerate(listed)}
    for sub in (f'images/{split}', f'panoptic_{split}', f'semantic_{split}'):
        (out / sub).mkdir(parents=True, exist_ok=True)
    images, annotations = [], []
    h, w = p['size']
    for idx in range(count):
        rng = np.random.default_rng(np.random.SeedSequence([p['seed'], SPLIT_CODES[split], idx]))
        img, layers = render_scene(rng, (h, w), things, tops, bottoms, p['min_things'], p['max_things'])
        pan = np.zeros((h, w), dtype=np.int64)
        sem = np.full((h, w), IGNORE_INDEX, dtype=np.uint8)
        segments, next_inst = [], {}
        for cls, mask in layers:
            area = int(mask.sum())
            if area == 0 or cls in novel or cls not in contiguous:  # withheld pixels stay VOID
                continue
            cat = NAME_TO_ID[CLASSES[cls].name]
            next_inst[cat] = next_inst.get(cat, 0) + 1
            seg_id = cat * 1000 + (next_inst[cat] if CLASSES[cls].isthing else 0)
            pan[mask] = seg_id
            sem[mask] = contiguous[cls]
            segments.append(dict(id=seg_id, category_id=cat, iscrowd=0, area=area, bbox=bbox_of_mask(mask)))
        name = f'{idx:06d}'
        _write_png(str(out / f'images/{split}/{name}.png'), img)
        write_panoptic_png(out / f'panoptic_{split}/{name}.png', pan)
        _write_png(str(out / f'semantic_{split}/{name}.png'), sem)
        images.append(dict(id=idx, file_name=f'{name}.png', height=h, width=w))
        annotations.append(dict(image_id=idx, file_name=f'{name}.png', segments_info=segments))
    categories = [dict(id=NAME_TO_ID[CLASSES[i].name], name=CLASSES[i].name, isthing=int(CLASSES[i].isthing),
                       color=list(CLASSES[i].color), supercategory='thing' if CLASSES[i].isthing else 'stuff')
                  for i in listed]
    doc = dict(info=dict(description=f'ToyScenes {split}', version=GENERATOR_VERSION), images=images,
               annotations=annotations, categories=categories)
    with open(out / f'panoptic_{split}.json', 'w', encoding='utf-8') as f:
        json.dump(doc, f, sort_keys=True, separators=(',', ':'))
    dump_vocabulary([list(CLASSES[i].synonyms) for i in listed], out / f'toy_scenes_{split}.txt')


def generate_toy_scenes(out_dir: str | os.PathLike, **params: Any) -> Path:
    """Write a complete ToyScenes dataset into ``out_dir`` (created; should be empty). See module doc."""
    p = _normalise_params(**params)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for split in ('train', 'val'):
        _generate_split(out, p, split)
    dump_vocabulary([list(c.synonyms) for c in CLASSES], out / 'toy_scenes.txt')
    with open(out / 'meta.json', 'w', encoding='utf-8') as f:
        json.dump(dict(generator_version=GENERATOR_VERSION, **p), f, sort_keys=True, indent=1)
    return out


def _check_meta(root: Path, p: dict) -> dict:
    with open(root / 'meta.json', encoding='utf-8') as f:
        meta = json.load(f)
    expected = dict(generator_version=GENERATOR_VERSION, **p)
    diff = sorted(k for k in set(meta) | set(expected) if meta.get(k) != expected.get(k))
    if diff:
        details = ', '.join(f'{k}: on disk {meta.get(k)!r} vs requested {expected.get(k)!r}' for k in diff)
        raise ValueError(f'{root} holds ToyScenes generated with different parameters ({details}); '
                         'delete it or use another data_root')
    return meta


@contextlib.contextmanager
def _file_lock(path: Path):
    with open(path, 'a+') as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def ensure_toy_scenes(data_root: str | os.PathLike, **params: Any) -> Path:
    """Generate ToyScenes into ``data_root`` unless a complete copy with the same parameters exists.

    Safe with several processes (DDP ranks, dataloader workers): an exclusive file lock serialises them,
    the data is written to a temporary sibling directory and atomically renamed, and later ranks find
    ``meta.json`` and return. A mismatching existing copy raises instead of being silently reused.
    """
    p = _normalise_params(**params)
    root = Path(data_root)
    if (root / 'meta.json').is_file():
        _check_meta(root, p)
        return root
    root.parent.mkdir(parents=True, exist_ok=True)
    with _file_lock(root.parent / f'.{root.name}.lock'):
        if (root / 'meta.json').is_file():
            _check_meta(root, p)
            return root
        if root.exists() and any(root.iterdir()):
            raise FileExistsError(f'{root} exists but is not a complete ToyScenes dataset (no meta.json); '
                                  'delete it to regenerate')
        build_dir_atomically(root, lambda tmp: generate_toy_scenes(tmp, **p))
    return root


# --------------------------------------------------------------------------------------------- dataset
@DATASETS.register_module()
class ToyScenesDataset(CocoPanopticDataset):
    """ToyScenes as a :class:`CocoPanopticDataset`, generated on first use.

    Args:
        data_root: dataset directory (default ``data/toy_scenes``).
        split: ``'train'`` or ``'val'``.
        generate: ``True``/``dict(...)`` of generator parameters (see ``DEFAULTS``) to create the data when
            absent; ``False`` to require existing data.
        ann_file: another panoptic JSON over the split's images (e.g. a label configuration with deleted
            classes), relative to ``data_root``; default ``panoptic_<split>.json``.
        Remaining args go to :class:`CocoPanopticDataset`. ``metainfo`` gains ``novel_classes`` and
        ``base_classes`` (names) so open-vocabulary metrics can report seen/unseen splits.
    """

    def __init__(self, data_root: str = 'data/toy_scenes', split: str = 'train',
                 generate: bool | dict = True, metainfo: dict | None = None, ann_file: str | None = None,
                 **kwargs: Any) -> None:
        if split not in SPLIT_CODES:
            raise ValueError(f"split must be 'train' or 'val', got {split!r}")
        if generate is not False:
            ensure_toy_scenes(data_root, **(generate if isinstance(generate, dict) else {}))
        meta_file = osp.join(data_root, 'meta.json')
        if not osp.isfile(meta_file):
            raise FileNotFoundError(f'{meta_file} not found: no ToyScenes data in {data_root} '
                                    '(generate=False)')
        with open(meta_file, encoding='utf-8') as f:
            novel = list(json.load(f)['novel_classes'])
        extra = dict(novel_classes=novel, base_classes=[n for n in CLASS_NAMES if n not in novel])
        extra.update(metainfo or {})
        self.split = split
        kwargs.setdefault('vocabulary', osp.join(data_root, f'toy_scenes_{split}.txt'))
        kwargs.setdefault('data_prefix', dict(img=f'images/{split}', seg=f'panoptic_{split}'))
        super().__init__(ann_file=ann_file or f'panoptic_{split}.json', data_root=data_root, metainfo=extra,
                         **kwargs)


# --------------------------------------------------------------------------------------------- CLI
def main(argv: list[str] | None = None) -> int:
    """``ovseg-toyscenes``: generate a ToyScenes dataset from the command line."""
    parser = argparse.ArgumentParser(description='Generate the ToyScenes panoptic dataset.')
    parser.add_argument('out_dir', nargs='?', default='data/toy_scenes', help='output directory')
    parser.add_argument('--num-train', type=int, default=DEFAULTS['num_train'])
    parser.add_argument('--num-val', type=int, default=DEFAULTS['num_val'])
    parser.add_argument('--size', type=int, nargs='+', default=list(DEFAULTS['size']),
                        help='image size: S or H W (default 128 128)')
    parser.add_argument('--seed', type=int, default=DEFAULTS['seed'])
    parser.add_argument('--novel-classes', nargs='*', default=[], choices=CLASS_NAMES,
                        help='classes withheld from the training split')
    parser.add_argument('--novel-mode', choices=('absent', 'unlabelled'), default=DEFAULTS['novel_mode'])
    parser.add_argument('--novel-in-train-vocab', action='store_true',
                        help='keep novel classes in the train categories/vocabulary')
    parser.add_argument('--min-things', type=int, default=DEFAULTS['min_things'])
    parser.add_argument('--max-things', type=int, default=DEFAULTS['max_things'])
    args = parser.parse_args(argv)
    if len(args.size) not in (1, 2):
        parser.error('--size takes one or two integers')
    size = args.size * 2 if len(args.size) == 1 else args.size
    start = time.perf_counter()
    root = ensure_toy_scenes(args.out_dir, num_train=args.num_train, num_val=args.num_val, size=size,
                             seed=args.seed, novel_classes=args.novel_classes, novel_mode=args.novel_mode,
                             novel_in_train_vocab=args.novel_in_train_vocab, min_things=args.min_things,
                             max_things=args.max_things)
    print(f'ToyScenes ready in {root} ({time.perf_counter() - start:.1f}s)', file=sys.stderr)
    return 0


def cli() -> None:
    """The ``ovseg-toyscenes`` entry point: ``main`` with one-line errors (``--debug`` for the traceback)."""
    run_tool(main)


if __name__ == '__main__':
    cli()
