"""ToyScenes frame pairs: region pairs across "time" generated in seconds on a CPU, in the npz frame-pair format.

Why: the mask-caption pipeline (caption the region in frame A, re-segment it in frame B) needs a tiny video-like
source a CPU model can learn, with known correspondences, to test data, model and training end to end without
SA-V. Each scene is a ToyScenes scene (same classes, shapes, stuff textures and thing shading as
``ovseg.datasets.toy_scenes``): its *spec* (stuff bands and textures, things with class, centre, radius, angle,
colour jitter, plus a seeded move: offset up to ``max_shift`` of the image side and a scale change up to
``max_scale_change``) is sampled once and drawn twice, render A before the move and render B after it, with the
same paint order (so occlusions follow the move). Every thing gives one pair: its visible mask in A and in B. A
pair where the thing is smaller than ``min_area`` pixels in either render (occluded, pushed out of the image) is
dropped and counted in ``meta.json``. The stuff background does not move.

Layout written under ``data_root`` (default ``data/toy_frame_pairs``)::

    {train,val}/000000_00.npz   scene 0, thing 0 (paint order): the npz pair format of ``sav.py``, with
                                frame_indices [0, 1], video_id 'toy_<split>_000000', object_id = thing index,
                                category_name = ToyScenes class name (no expression)
    meta.json                   version, parameters and counts per split (written last: marks a complete copy)

Output is byte-identical for given parameters (per-scene ``SeedSequence([seed, split code, scene])``; npz member
timestamps are fixed). :func:`ensure_toy_frame_pairs` writes a temporary sibling under a file lock and renames it,
as ``ovseg.datasets.toy_referring`` does, so DDP ranks can all call it.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
from mmengine.logging import print_log

from ovseg.datasets.toy_scenes import CLASSES, SPLIT_CODES, _file_lock, _stuff_texture, _thing_mask, with_defaults
from ovseg.registry import DATASETS
from ovseg.utils.atomic_io import atomic_write_bytes, build_dir_atomically

from .sav import SAVFramePairNpzDataset, write_frame_pair_npz

__all__ = ['TOY_PAIRS_DEFAULTS', 'sample_toy_pair_scene', 'draw_toy_pair_scene', 'generate_toy_frame_pairs',
           'ensure_toy_frame_pairs', 'ToyFramePairDataset']

TOY_PAIRS_VERSION = 1
TOY_PAIRS_DEFAULTS: dict[str, Any] = dict(num_train=200, num_val=50, size=(128, 128), seed=0, min_things=1,
                                          max_things=4, max_shift=0.15, max_scale_change=0.15, min_area=32)


# ---------------------------------------------------------------------------------------------------- scenes
def sample_toy_pair_scene(rng: np.random.Generator, size: tuple[int, int], max_things: int = 4, min_things: int = 1,
                          max_shift: float = 0.15, max_scale_change: float = 0.15) -> dict[str, Any]:
    """Sample a scene spec once: ``background`` (float H×W×3 stuff image) and ``things`` (one dict per thing in
    paint order: ``cls, cx, cy, r, angle, jitter`` of render A and the move ``dx, dy, scale`` to render B).

    Stuff bands and thing shapes follow ``ovseg.datasets.toy_scenes.render_scene``'s distributions.
    """
    h, w = size
    yy, xx = np.mgrid[0:h, 0:w]
    tops = [i for i, c in enumerate(CLASSES) if c.kind == 'top']
    bottoms = [i for i, c in enumerate(CLASSES) if c.kind == 'bottom']
    thing_classes = [i for i, c in enumerate(CLASSES) if c.isthing]
    top = int(rng.choice(tops))
    wobble = np.sin(xx[0] * rng.uniform(0.03, 0.12) + rng.uniform(0, 6))
    boundary = h * rng.uniform(0.3, 0.55) + h * 0.05 * wobble
    top_mask = yy < boundary[None, :]
    layers = [(top, top_mask)]
    bottom_choices = list(rng.permutation(bottoms))
    if rng.random() < 0.5:
        split = boundary + (h - boundary) * rng.uniform(0.35, 0.65)
        lower = yy >= split[None, :]
        layers += [(int(bottom_choices[0]), ~top_mask & ~lower), (int(bottom_choices[1]), lower)]
    else:
        layers.append((int(bottom_choices[0]), ~top_mask))
    background = np.zeros((h, w, 3), dtype=np.float32)
    for cls, mask in layers:
        background[mask] = _stuff_texture(CLASSES[cls], h, w, rng)[mask]
    things = []
    for _ in range(int(rng.integers(min_things, max_things + 1))):
        cls = int(rng.choice(thing_classes))
        r = min(h, w) * rng.uniform(0.08, 0.2)
        cx, cy = rng.uniform(r * 0.6, w - r * 0.6), rng.uniform(r * 0.6, h - r * 0.6)
        angle = rng.uniform(-0.4, 0.4)
        jitter = rng.integers(-15, 16, size=3)
        dx, dy = rng.uniform(-max_shift, max_shift) * w, rng.uniform(-max_shift, max_shift) * h
        scale = rng.uniform(1 - max_scale_change, 1 + max_scale_change)
        things.append(dict(cls=cls, cx=cx, cy=cy, r=r, angle=angle, jitter=jitter, dx=dx, dy=dy, scale=scale))
    return dict(background=background, things=things)


def draw_toy_pair_scene(spec: dict[str, Any], moved: bool) -> tuple[np.ndarray, list[np.ndarray]]:
    """Draw a spec before (``moved=False``: render A) or after the move (render B): uint8 RGB image and the
    visible mask of every thing (paint order; later things occlude earlier ones)."""
    img = spec['background'].copy()
    h, w = img.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w]
    fulls = []
    for t in spec['things']:
        cx, cy, r = (t['cx'] + t['dx'], t['cy'] + t['dy'], t['r'] * t['scale']) if moved else (t['cx'], t['cy'],
                                                                                                 t['r'])
        full = _thing_mask(CLASSES[t['cls']].kind, cx, cy, r, t['angle'], h, w)
        color = np.clip(np.array(CLASSES[t['cls']].color) + t['jitter'], 0, 255).astype(np.float32)
        shade = 1.05 - 0.25 * np.clip(np.hypot(xx - cx + 0.3 * r, yy - cy + 0.3 * r) / (1.6 * r), 0, 1)
        img[full] = color * shade[full][:, None]
        fulls.append(full)
    visible = []
    for i, full in enumerate(fulls):
        vis = full.copy()
        for later in fulls[i + 1:]:
            vis &= ~later
        visible.append(vis)
    return np.clip(img + 0.5, 0, 255).astype(np.uint8), visible


# ---------------------------------------------------------------------------------------------------- writing
def _normalise(**params: Any) -> dict[str, Any]:
    p = with_defaults(params, TOY_PAIRS_DEFAULTS, 'ToyScenes frame-pair')
    size = p['size']
    p['size'] = [int(size), int(size)] if isinstance(size, int) else [int(v) for v in size]
    for key in ('num_train', 'num_val', 'min_things', 'max_things', 'min_area'):
        if isinstance(p[key], bool) or not isinstance(p[key], (int, np.integer)) or p[key] < 0:
            raise ValueError(f'{key} must be a non-negative integer, got {p[key]!r}')
        p[key] = int(p[key])
    if p['num_train'] + p['num_val'] == 0:
        raise ValueError('num_train and num_val are both 0: nothing to generate')
    if not 1 <= p['min_things'] <= p['max_things']:
        raise ValueError('need 1 <= min_things <= max_things')
    if len(p['size']) != 2 or min(p['size']) < 32:
        raise ValueError(f"size {p['size']} too small; use at least 32x32")
    if not 0 <= float(p['max_shift']) <= 0.5:
        raise ValueError(f"max_shift must be in [0, 0.5] (a fraction of the image side), got {p['max_shift']!r}")
    if not 0 <= float(p['max_scale_change']) < 0.5:
        raise ValueError(f"max_scale_change must be in [0, 0.5), got {p['max_scale_change']!r}")
    if p['min_area'] < 1:
        raise ValueError('min_area must be >= 1 pixel (an empty mask is never a region)')
    p['seed'] = int(p['seed'])
    p['max_shift'], p['max_scale_change'] = float(p['max_shift']), float(p['max_scale_change'])
    return p


def generate_toy_frame_pairs(out_dir: str | os.PathLike, **params: Any) -> dict[str, Any]:
    """Write every split's npz pairs and ``meta.json`` (last) into ``out_dir``; returns the meta.

    Prefer :func:`ensure_toy_frame_pairs` (atomic, locked, reuses a complete copy).
    """
    p = _normalise(**params)
    out = Path(out_dir)
    h, w = p['size']
    counts = {}
    for split in ('train', 'val'):
        num = p['num_train'] if split == 'train' else p['num_val']
        c = dict(scenes=num, things=0, pairs=0, dropped_small=0)
        (out / split).mkdir(parents=True, exist_ok=True)
        for idx in range(num):
            rng = np.random.default_rng(np.random.SeedSequence([p['seed'], SPLIT_CODES[split], idx]))
            spec = sample_toy_pair_scene(rng, (h, w), p['max_things'], p['min_things'], p['max_shift'],
                                         p['max_scale_change'])
            img_a, vis_a = draw_toy_pair_scene(spec, moved=False)
            img_b, vis_b = draw_toy_pair_scene(spec, moved=True)
            for k, (thing, ma, mb) in enumerate(zip(spec['things'], vis_a, vis_b)):
                c['things'] += 1
                if ma.sum() < p['min_area'] or mb.sum() < p['min_area']:
                    c['dropped_small'] += 1
                    continue
                write_frame_pair_npz(out / split / f'{idx:06d}_{k:02d}.npz', [img_a, img_b], [ma, mb], (0, 1),
                                     f'toy_{split}_{idx:06d}', k, category_name=CLASSES[thing['cls']].name)
                c['pairs'] += 1
        counts[split] = c
    meta = dict(toy_frame_pairs_version=TOY_PAIRS_VERSION, params=p, counts=counts)
    atomic_write_bytes(out / 'meta.json', json.dumps(meta, sort_keys=True, indent=1).encode('utf-8'))
    return meta


def _check_meta(root: Path, p: dict) -> dict:
    with open(root / 'meta.json', encoding='utf-8') as f:
        meta = json.load(f)
    expected = dict(toy_frame_pairs_version=TOY_PAIRS_VERSION, params=p)
    diff = [k for k in expected if meta.get(k) != expected[k]]
    if diff:
        raise ValueError(f'{root} holds ToyScenes frame pairs generated differently ({", ".join(diff)} differ: on '
                         f'disk {[meta.get(k) for k in diff]!r} vs requested {[expected[k] for k in diff]!r}); '
                         'delete it to regenerate')
    return meta


def ensure_toy_frame_pairs(data_root: str | os.PathLike = 'data/toy_frame_pairs', **params: Any) -> dict[str, Any]:
    """Generate ToyScenes frame pairs into ``data_root`` unless a complete copy with the same parameters exists;
    returns its meta.

    Safe with several processes (DDP ranks): an exclusive lock serialises them, data is written to a temporary
    sibling and renamed; a copy made with other parameters raises instead of being reused.
    """
    p = _normalise(**params)
    root = Path(data_root)
    if (root / 'meta.json').is_file():
        return _check_meta(root, p)
    root.parent.mkdir(parents=True, exist_ok=True)
    with _file_lock(root.parent / f'.{root.name}.lock'):
        if (root / 'meta.json').is_file():
            return _check_meta(root, p)
        if root.exists() and any(root.iterdir()):
            raise FileExistsError(f'{root} exists but is not complete (no meta.json); delete it to regenerate')
        meta = build_dir_atomically(root, lambda tmp: generate_toy_frame_pairs(tmp, **p))
    summary = ', '.join(f"{s}: {c['pairs']} pairs of {c['scenes']} scenes ({c['dropped_small']} dropped < "
                        f"{p['min_area']} px)" for s, c in meta['counts'].items())
    print_log(f'ToyScenes frame pairs {root}: {summary}', logger='current')
    return meta


@DATASETS.register_module()
class ToyFramePairDataset(SAVFramePairNpzDataset):
    """ToyScenes frame pairs (``source='toy_pairs'``) read as :class:`SAVFramePairNpzDataset`, generated on first use.

    Args:
        data_root: the frame-pair folder (default ``data/toy_frame_pairs``).
        split: ``'train'`` or ``'val'``.
        generate: ``True`` / ``dict(...)`` of generator parameters (:data:`TOY_PAIRS_DEFAULTS`) to create the data
            when absent (an existing copy must match them); ``False`` requires existing data.
        Other args as :class:`SAVFramePairNpzDataset` (``random_order``, ``check_files``, ``pipeline``,
        ``test_mode``...).
    """

    SOURCE = 'toy_pairs'

    def __init__(self, data_root: str = 'data/toy_frame_pairs', split: str = 'train', generate: bool | dict = True,
                 **kwargs: Any) -> None:
        if split not in SPLIT_CODES:
            raise ValueError(f"split must be 'train' or 'val', got {split!r}")
        if generate is not False:
            ensure_toy_frame_pairs(data_root, **(generate if isinstance(generate, dict) else {}))
        elif not (Path(data_root) / 'meta.json').is_file():
            raise FileNotFoundError(f'{Path(data_root) / "meta.json"} not found: no ToyScenes frame pairs in '
                                    f'{data_root} (generate=False)')
        self.split = split
        super().__init__(data_root=data_root, npz_dir=split, **kwargs)
