"""Layout generators: the LLM one (prompt, parse, validate, bounded retries) and an offline rule-based one.

Both implement ``generate(scene_id, categories, seed) -> LayoutResult``; the pipeline samples the categories
(:func:`sample_categories`) so the two backends see identical scene specs for a given seed.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from mmengine.logging import MMLogger

from ovseg.vocabulary import SynonymIndex

from ..llm.base import LLMError
from ..registry import LAYOUT_GENERATORS, LLMS, build
from ..utils import derive_seed
from .prompting import layout_messages, parse_layout_answer
from .schema import Layout, LayoutObject, LayoutValidationError, validate_objects


@dataclass
class LayoutResult:
    layout: Layout | None = None
    reason: str | None = None  # rejection reason when layout is None
    attempts: int = 0
    attempt_reasons: list = field(default_factory=list)


def sample_categories(rng: np.random.Generator, base: list[str], novel: list[str], min_k: int = 5,
                      max_k: int = 8, min_novel: int = 1, cooccurrence: dict | None = None,
                      cooc_boost: float = 3.0) -> list[str]:
    """Sample ``k ~ U[min_k, max_k]`` distinct categories from base ∪ novel.

    At least ``min_novel`` novel names are included when novel names exist (NSS exists to show novel
    categories). Later picks are weighted by ``1 + cooc_boost`` for names listed in ``cooccurrence`` of an
    already chosen name (context-aware sets such as plate+table, car+road).
    """
    pool = list(dict.fromkeys(list(base) + list(novel)))
    k = int(rng.integers(min_k, max_k + 1))
    k = min(k, len(pool))
    chosen: list[str] = []
    novel_pool = [n for n in novel if n in pool]
    for _ in range(min(min_novel, len(novel_pool), k)):
        rest = [n for n in novel_pool if n not in chosen]
        chosen.append(rest[int(rng.integers(len(rest)))])
    cooc = {k_: set(v) for k_, v in (cooccurrence or {}).items()}
    while len(chosen) < k:
        rest = [n for n in pool if n not in chosen]
        related = set()
        for c in chosen:
            related |= cooc.get(c, set())
        w = np.array([1.0 + cooc_boost * (n in related) for n in rest])
        chosen.append(rest[int(rng.choice(len(rest), p=w / w.sum()))])
    return chosen


@LAYOUT_GENERATORS.register_module()
class LLMLayoutGenerator:
    """Ask an LLM for an HTML layout; parse, validate (names, canvas, area, markup); retry up to
    ``max_attempts`` times with a new per-attempt seed; then give up with the last reason."""

    def __init__(self, llm, max_attempts: int = 3, tolerance: int = 0, min_size: int = 2,
                 max_objects: int = 32):
        self.llm = build(LLMS, llm)
        self.max_attempts = max_attempts
        self.tolerance = tolerance
        self.min_size = min_size
        self.max_objects = max_objects

    def describe(self):
        return {'type': type(self).__name__, 'llm': self.llm.describe()}

    def generate(self, scene_id: str, categories: list[str], seed: int, width: int, height: int,
                 vocab: SynonymIndex) -> LayoutResult:
        logger = MMLogger.get_current_instance()
        msgs = layout_messages(categories, width, height)
        res = LayoutResult()
        for a in range(self.max_attempts):
            res.attempts = a + 1
            try:
                text = self.llm.chat(msgs, seed=derive_seed(seed, 'attempt', a))
                objs = validate_objects(parse_layout_answer(text), vocab, width, height, self.tolerance,
                                        self.min_size, self.max_objects)
                res.layout = Layout(scene_id, width, height, objs, list(categories),
                                    type(self).__name__, seed)
                res.reason = None
                return res
            except LLMError as e:
                res.reason = e.reason
                res.attempt_reasons.append(e.reason)
                if not e.retryable:
                    break
            except LayoutValidationError as e:
                res.reason = e.reason
                res.attempt_reasons.append(e.reason)
            logger.info(f'{scene_id}: layout attempt {a + 1}/{self.max_attempts} rejected: {res.reason}')
        return res


# ------------------------------------------------------------------------------------------ rule-based
DEFAULT_RULE = dict(kind='thing', support=('ground', ), size=(0.12, 0.3), aspect=(0.6, 1.6), instances=(1, 2))


@LAYOUT_GENERATORS.register_module()
class RuleBasedLayoutGenerator:
    """Offline context-aware layouts from placement rules; no LLM needed.

    ``rules[name]`` (missing keys from ``default_rule``):
      - ``kind='stuff', region='top'|'bottom'``: a full-width background band (sky/wall above a horizon;
        ground stuff such as grass/road/water below it; two ground stuffs split the ground band);
      - ``kind='thing', support=(names...)``: rests on the first present supporter -- a ground stuff name, a
        thing name (placed on that thing's top edge, e.g. plate on table), ``'ground'`` (any bottom band, or
        the lower canvas half) or ``'air'`` (inside the top band); ``size=(lo, hi)`` the box's long side as a
        fraction of the canvas' short side (scaled by perspective: lower = nearer = larger),
        ``aspect=(lo, hi)`` w/h, ``instances=(lo, hi)``.
    Thing boxes overlap other things by at most ``max_iou``; an instance that cannot be placed in
    ``max_tries`` draws is dropped (counted in ``stats['placement_failed']``). Objects are ordered back to
    front (background, then far to near; supporters before what they support), the paint order used by the
    procedural renderer.
    """

    def __init__(self, rules: dict | None = None, default_rule: dict | None = None, max_iou: float = 0.25,
                 max_tries: int = 30, horizon=(0.3, 0.55), min_size: int = 4):
        self.rules = {k: dict(v) for k, v in (rules or {}).items()}
        self.default_rule = {**DEFAULT_RULE, **(default_rule or {})}
        self.max_iou = max_iou
        self.max_tries = max_tries
        self.horizon = tuple(horizon)
        self.min_size = min_size
        self.stats = {'placement_failed': 0}

    def describe(self):
        return {'type': type(self).__name__, 'max_iou': self.max_iou}

    def rule(self, name: str) -> dict:
        r = {**self.default_rule, **self.rules.get(name, {})}
        if isinstance(r.get('support'), str):
            r['support'] = (r['support'], )
        return r

    @staticmethod
    def _iou(a, b) -> float:
        ix = max(0, min(a[2], b[2]) - max(a[0], b[0]))
        iy = max(0, min(a[3], b[3]) - max(a[1], b[1]))
        inter = ix * iy
        union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
        return inter / union if union > 0 else 0.0

    def generate(self, scene_id: str, categories: list[str], seed: int, width: int, height: int,
                 vocab: SynonymIndex | None = None) -> LayoutResult:
        rng = np.random.default_rng(seed)
        W, H = width, height
        tops = [
            c for c in categories if self.rule(c)['kind'] == 'stuff' and self.rule(c).get('region') == 'top'
        ]
        bottoms = [
            c for c in categories
            if self.rule(c)['kind'] == 'stuff' and self.rule(c).get('region', 'bottom') == 'bottom'
        ]
        things = [c for c in categories if self.rule(c)['kind'] != 'stuff']
        tops, bottoms = tops[:1], bottoms[:2]
        horizon = int(round(H * rng.uniform(*self.horizon))) if (tops or bottoms) else H // 2
        regions: dict[str, tuple] = {}  # name -> xyxy
        objects: list[tuple] = []  # (sort key, level, LayoutObject)
        if tops:
            regions[tops[0]] = (0, 0, W, horizon)
            objects.append(((-2, 0), 0, LayoutObject(tops[0], 0, 0, W, horizon)))
        if bottoms:
            if len(bottoms) == 2:
                split = int(round(horizon + (H - horizon) * rng.uniform(0.35, 0.65)))
                bands = [(bottoms[0], horizon, split), (bottoms[1], split, H)]
            else:
                bands = [(bottoms[0], horizon, H)]
            y_start = horizon if tops else 0
            for j, (n, y0, y1) in enumerate(bands):
                y0 = y_start if j == 0 else y0
                regions[n] = (0, y0, W, y1)
                objects.append(((-1, j), 0, LayoutObject(n, 0, y0, W, y1 - y0)))
        placed: list[tuple] = []  # (xyxy, name, sort key)
        short = min(W, H)
        # things with a thing supporter go after their supporter
        order = sorted(things, key=lambda c: any(s in things for s in self.rule(c)['support']))
        for name in order:
            r = self.rule(name)
            n_inst = int(rng.integers(r['instances'][0], r['instances'][1] + 1))
            for _ in range(n_inst):
                ok = False
                for _t in range(self.max_tries):
                    sup = self._pick_support(r['support'], regions, placed, things, rng, W, H, horizon)
                    if sup is None:
                        break
                    area, level, key_y, mode = sup
                    ax0, ay0, ax1, ay1 = area
                    # bottom edge (contact line) inside the support area; perspective scale by contact y
                    contact = rng.uniform(ay0, ay1)
                    persp = 0.6 + 0.8 * contact / H
                    long_side = short * rng.uniform(*r['size']) * persp
                    asp = rng.uniform(*r['aspect'])
                    w = long_side if asp >= 1 else long_side * asp
                    h = long_side / asp if asp >= 1 else long_side
                    if level > 0:  # on a thing: keep within its width
                        w = min(w, (ax1 - ax0) * 0.8)
                        h = min(h, w / max(asp, 1e-3))
                    if mode == 'air':
                        y0 = contact - h / 2
                    else:
                        y0 = contact - h
                    x0 = rng.uniform(ax0, max(ax0, ax1 - w))
                    box = (int(round(x0)), int(round(y0)), int(round(x0 + w)), int(round(y0 + h)))
                    if box[0] < 0 or box[1] < 0 or box[2] > W or box[3] > H:
                        continue
                    if box[2] - box[0] < self.min_size or box[3] - box[1] < self.min_size:
                        continue
                    if any(self._iou(box, p[0]) > self.max_iou for p in placed if p[3] == level):
                        continue
                    placed.append((box, name, key_y if level > 0 else box[3], level))
                    ok = True
                    break
                if not ok:
                    self.stats['placement_failed'] += 1
        for box, name, key_y, level in placed:
            objects.append(
                ((0, key_y), level, LayoutObject(name, box[0], box[1], box[2] - box[0], box[3] - box[1])))
        objects.sort(key=lambda t: (t[0], t[1]))
        objs = [o for _, _, o in objects]
        if not objs:
            return LayoutResult(None, 'no_objects_placed', 1)
        return LayoutResult(Layout(scene_id, W, H, objs, list(categories),
                                   type(self).__name__, seed), None, 1)

    def _pick_support(self, supports, regions, placed, things, rng, W, H, horizon):
        """(support area xyxy for the contact line, level, depth key) or None."""
        for s in supports:
            if s in regions:
                x0, y0, x1, y1 = regions[s]
                return (x0, y0 + 0.15 * (y1 - y0), x1, y1), 0, None, 'rest'
            if s == 'ground':
                grounds = [v for k, v in regions.items() if self.rule(k).get('region', 'bottom') == 'bottom']
                if grounds:
                    g = grounds[int(rng.integers(len(grounds)))]
                    return (g[0], g[1] + 0.15 * (g[3] - g[1]), g[2], g[3]), 0, None, 'rest'
                return (0, H * 0.5, W, H), 0, None, 'rest'
            if s == 'air':
                top = [v for k, v in regions.items() if self.rule(k).get('region') == 'top']
                t = top[0] if top else (0, 0, W, horizon)
                return (t[0], t[1] + 0.2 * (t[3] - t[1]), t[2], t[1] + 0.8 * (t[3] - t[1])), 0, None, 'air'
            sup = [p for p in placed if p[1] == s and p[3] == 0]
            if sup:
                b = sup[int(rng.integers(len(sup)))][0]
                # contact line on the supporter's upper part (e.g. table top)
                return (b[0], b[1] + 0.02 * (b[3] - b[1]), b[2], b[1] + 0.2 * (b[3] - b[1])), 1, b[3], 'rest'
        return None
