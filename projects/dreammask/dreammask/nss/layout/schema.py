"""The layout record shared by every stage, and its validation."""
from __future__ import annotations

from dataclasses import dataclass, field

from ovseg.vocabulary import SynonymIndex

# Rejection reasons (stable strings: they appear in summaries and state files).
MALFORMED = 'malformed'
EMPTY = 'empty_layout'
UNKNOWN_NAME = 'unknown_name'
OUT_OF_CANVAS = 'out_of_canvas'
ZERO_AREA = 'zero_area'
TOO_MANY = 'too_many_objects'


class LayoutValidationError(ValueError):

    def __init__(self, reason: str, detail: str = ''):
        self.reason = reason
        super().__init__(f'{reason}: {detail}' if detail else reason)


@dataclass
class LayoutObject:
    name: str
    x: int
    y: int
    w: int
    h: int

    def box(self) -> dict:
        return {'x': int(self.x), 'y': int(self.y), 'w': int(self.w), 'h': int(self.h)}

    def xyxy(self):
        return (self.x, self.y, self.x + self.w, self.y + self.h)


@dataclass
class Layout:
    scene_id: str
    canvas_width: int
    canvas_height: int
    objects: list[LayoutObject]
    categories: list[str] = field(default_factory=list)
    generator: str = ''
    seed: int | None = None

    def to_json(self) -> dict:
        idx = self.scene_id.split('_')[-1]
        return {
            'scene_id': self.scene_id,
            'canvas_width': int(self.canvas_width),
            'canvas_height': int(self.canvas_height),
            'categories': list(self.categories),
            'objects': [{
                'index': i,
                'name': o.name,
                'box': o.box()
            } for i, o in enumerate(self.objects)],
            'layout_html': f'{self.scene_id}.html',
            'layout_image': f'{self.scene_id}.png',
            'real_image': f'real_{idx}.png',
            'generator': self.generator,
            'seed': self.seed,
        }

    @classmethod
    def from_json(cls, d: dict) -> 'Layout':
        objs = [LayoutObject(o['name'], *(int(o['box'][k]) for k in 'xywh')) for o in d['objects']]
        return cls(d['scene_id'], int(d['canvas_width']), int(d['canvas_height']), objs,
                   list(d.get('categories', [])), d.get('generator', ''), d.get('seed'))


def validate_objects(raw: list[dict], vocab: SynonymIndex, width: int, height: int, tolerance: int = 0,
                     min_size: int = 1, max_objects: int = 32) -> list[LayoutObject]:
    """Check parsed ``[{'name', 'x', 'y', 'w', 'h'}]``; return canonical objects or raise
    :class:`LayoutValidationError` with the first failing reason.

    Names map to the vocabulary's display name (synonyms/plurals accepted). Boxes may stick out of the canvas
    by at most ``tolerance`` px (then they are clipped); a side below ``min_size`` px is ``zero_area``.
    """
    if not raw:
        raise LayoutValidationError(EMPTY, 'no objects')
    if len(raw) > max_objects:
        raise LayoutValidationError(TOO_MANY, f'{len(raw)} > {max_objects}')
    out = []
    for i, o in enumerate(raw):
        name = vocab.lookup(o.get('name', '') or '')
        if name is None:
            raise LayoutValidationError(UNKNOWN_NAME, f'object {i}: {o.get("name")!r}')
        try:
            x, y, w, h = (float(o[k]) for k in ('x', 'y', 'w', 'h'))
        except (KeyError, TypeError, ValueError):
            raise LayoutValidationError(MALFORMED, f'object {i}: bad coordinates') from None
        if w < min_size or h < min_size:
            raise LayoutValidationError(ZERO_AREA, f'object {i} ({name}): {w}x{h}')
        x0, y0, x1, y1 = x, y, x + w, y + h
        if x0 < -tolerance or y0 < -tolerance or x1 > width + tolerance or y1 > height + tolerance:
            raise LayoutValidationError(OUT_OF_CANVAS, f'object {i} ({name}): {x0},{y0},{x1},{y1}')
        x0, y0 = max(0, round(x0)), max(0, round(y0))
        x1, y1 = min(width, round(x1)), min(height, round(y1))
        if x1 - x0 < min_size or y1 - y0 < min_size:
            raise LayoutValidationError(ZERO_AREA, f'object {i} ({name}) after clipping')
        out.append(LayoutObject(name, x0, y0, x1 - x0, y1 - y0))
    return out
