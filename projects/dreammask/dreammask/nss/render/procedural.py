"""Offline procedural layout-to-image renderer: textured shapes per category from a seeded palette.

Categories that are ToyScenes classes (``ovseg.datasets.toy_scenes``) are drawn with ToyScenes' own
appearance (colour, shape, stuff texture), so NSS toy data looks like ToyScenes. Other names get a shape and
colour derived from a hash of the name (``palette_seed``). Stuff (background) objects fill their box with a
texture; things are a shape centred in their box. Objects are painted back to front: by box area, larger first
(``paint_order='area'``, default; LLM layouts come in any order) or as listed (``'layout'``, for generators
that order back to front themselves, like the rule-based one).
"""
from __future__ import annotations

import hashlib
from collections.abc import Sequence

import cv2
import numpy as np
from PIL import Image

from ovseg.vocabulary import normalize_name

from ..layout.draw import name_color
from ..layout.paint_order import check_paint_order, paint_order
from ..layout.schema import Layout, LayoutObject
from ..registry import RENDERERS
from .base import LayoutToImage

SHAPES = ('circle', 'square', 'triangle', 'ring', 'star', 'cross')

try:  # reuse ToyScenes' class -> appearance definitions (single source of truth)
    from ovseg.datasets import toy_scenes as _toy
    _TOY = {}
    for _c in _toy.CLASSES:
        for _s in (_c.name, ) + tuple(_c.synonyms):
            _TOY.setdefault(normalize_name(_s), _c)
except Exception:  # pragma: no cover - ToyScenes unavailable: hash palette only
    _toy, _TOY = None, {}


def _hash_int(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], 'little')


class Appearance:
    """How one category is drawn: ``kind`` ('stuff' or a shape name), base colour, ToyScenes class or None."""

    def __init__(self, name: str, stuff_names: set, palette_seed: int):
        toy = _TOY.get(normalize_name(name))
        self.toy = toy
        if toy is not None:
            self.color = tuple(toy.color)
            self.kind = 'stuff' if not toy.isthing else toy.kind
        else:
            self.color = name_color(name, palette_seed)
            self.kind = 'stuff' if normalize_name(name) in stuff_names else \
                SHAPES[_hash_int(f'{palette_seed}:{name}') % len(SHAPES)]


def _shape_mask(kind: str, box: LayoutObject, h: int, w: int, angle: float) -> np.ndarray:
    cx, cy = box.x + box.w / 2, box.y + box.h / 2
    r = min(box.w, box.h) / 2
    if _toy is not None:
        m = _toy._thing_mask(kind, cx, cy, r, angle, h, w)
    else:  # pragma: no cover
        yy, xx = np.mgrid[0:h, 0:w]
        m = np.hypot(xx - cx, yy - cy) <= r
    box_m = np.zeros((h, w), bool)
    box_m[box.y:box.y + box.h, box.x:box.x + box.w] = True
    return m & box_m


def _stuff_texture(app: Appearance, h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    if app.toy is not None and _toy is not None:
        return _toy._stuff_texture(app.toy, h, w, rng)
    base = np.array(app.color, np.float32)
    noise = cv2.GaussianBlur(rng.random((h, w), dtype=np.float32), (0, 0), sigmaX=max(1.0, w / 64))
    return base * (0.85 + 0.3 * noise[..., None])


@RENDERERS.register_module()
class ProceduralRenderer(LayoutToImage):
    """Args:
        stuff_names: names drawn as textured background regions when they are not ToyScenes classes.
        palette_seed: seed of the name -> colour/shape hash for non-ToyScenes names.
        max_angle: random rotation (radians) of thing shapes.
        batch_size: layouts per call (rendering is per layout; kept for the common interface).
        paint_order: ``'area'`` (larger boxes behind smaller ones) or ``'layout'`` (as listed).
    """

    def __init__(self, stuff_names: Sequence[str] = (), palette_seed: int = 0, max_angle: float = 0.4,
                 batch_size: int = 8, paint_order: str = 'area'):
        self.paint_order = check_paint_order(paint_order)
        self.stuff_names = {normalize_name(n) for n in stuff_names}
        self.palette_seed = palette_seed
        self.max_angle = max_angle
        self.batch_size = batch_size

    def describe(self):
        return {
            'type': type(self).__name__,
            'palette_seed': self.palette_seed,
            'paint_order': self.paint_order,
            'toy_scenes_appearance': _toy is not None
        }

    def order(self, layout: Layout) -> list[int]:
        """Indices of ``layout.objects`` in painting order (first = furthest back)."""
        return paint_order([o.w * o.h for o in layout.objects], self.paint_order)

    def appearance(self, name: str) -> Appearance:
        return Appearance(name, self.stuff_names, self.palette_seed)

    def render_with_masks(self, layout: Layout, seed: int) -> tuple[Image.Image, list[np.ndarray]]:
        """The image and each object's *full* (un-occluded) mask, in layout order (painted in :meth:`order`)."""
        rng = np.random.default_rng(seed)
        h, w = layout.canvas_height, layout.canvas_width
        img = np.full((h, w, 3), 200.0, np.float32)
        img += rng.normal(0, 4, (h, w, 1)).astype(np.float32)
        yy, xx = np.mgrid[0:h, 0:w]
        masks: list[np.ndarray | None] = [None] * len(layout.objects)
        for i in self.order(layout):
            o = layout.objects[i]
            app = self.appearance(o.name)
            if app.kind == 'stuff':
                m = np.zeros((h, w), bool)
                m[o.y:o.y + o.h, o.x:o.x + o.w] = True
                tex = _stuff_texture(app, h, w, rng)
                img[m] = tex[m]
            else:
                angle = rng.uniform(-self.max_angle, self.max_angle)
                m = _shape_mask(app.kind, o, h, w, angle)
                color = np.clip(np.array(app.color) + rng.integers(-15, 16, size=3), 0,
                                255).astype(np.float32)
                cx, cy, r = o.x + o.w / 2, o.y + o.h / 2, max(1.0, min(o.w, o.h) / 2)
                shade = 1.05 - 0.25 * np.clip(
                    np.hypot(xx - cx + 0.3 * r, yy - cy + 0.3 * r) / (1.6 * r), 0, 1)
                img[m] = color * shade[m][:, None]
            masks[i] = m
        return Image.fromarray(np.clip(img + 0.5, 0, 255).astype(np.uint8)), masks

    def render_batch(self, layouts, seeds):
        return [self.render_with_masks(lay, s)[0] for lay, s in zip(layouts, seeds)]


def visible_masks(full_masks: list[np.ndarray], order: Sequence[int] | None = None) -> list[np.ndarray]:
    """Visible part of each mask (same order as ``full_masks``) when painted in ``order`` (default: as listed);
    objects painted later occlude earlier ones."""
    order = list(range(len(full_masks))) if order is None else list(order)
    out: list[np.ndarray | None] = [None] * len(full_masks)
    for pos, i in enumerate(order):
        vis = full_masks[i].copy()
        for later in order[pos + 1:]:
            vis &= ~full_masks[later]
        out[i] = vis
    return out
