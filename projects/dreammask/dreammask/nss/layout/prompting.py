"""Prompting an LLM for a context-aware layout and parsing its HTML (or JSON) answer."""
from __future__ import annotations

import json
import re
from html.parser import HTMLParser

from .schema import MALFORMED, LayoutValidationError

SYSTEM_PROMPT = (
    'You are a scene layout designer. You place objects on a canvas so that the scene is physically '
    'plausible and looks like a real photograph.')

PROMPT = (
    'Design the layout of a realistic photo on a {width}x{height} pixel canvas containing these categories:\n'
    '{names}\n\n'
    'Rules:\n'
    '- Every object rests on something that can support it: a plate on a table, a car on a road, a lamp\n'
    '  on a desk or the floor, a boat on water. Nothing floats in the air unless it flies (birds, kites,\n'
    '  planes, clouds, sky).\n'
    '- Background regions (sky, wall, floor, grass, road, water ...) are large boxes spanning the canvas\n'
    '  width.\n'
    '- Sizes and positions follow perspective: nearer objects are lower and larger; keep boxes inside the\n'
    '  canvas.\n'
    '- Use each category at least once (you may repeat a category) and only categories from the list.\n\n'
    'Answer with raw HTML only, no explanation, in exactly this form (pixel units, integers):\n'
    '<div class="canvas" style="position:relative; width:{width}px; height:{height}px;">\n'
    '  <div class="object" data-name="CATEGORY" '
    'style="position:absolute; left:X px; top:Y px; width:W px; height:H px;"></div>\n'
    '  ...\n'
    '</div>')


def layout_messages(names, width: int, height: int) -> list[dict]:
    return [{
        'role': 'system',
        'content': SYSTEM_PROMPT
    }, {
        'role': 'user',
        'content': PROMPT.format(width=width, height=height, names='\n'.join(f'- {n}' for n in names))
    }]


_PX = re.compile(r'^\s*(-?\d+(?:\.\d+)?)\s*(?:px)?\s*$')


def _style(style: str) -> dict:
    out = {}
    for part in style.split(';'):
        if ':' in part:
            k, v = part.split(':', 1)
            out[k.strip().lower()] = v.replace(' px', 'px').strip()
    return out


class _ObjectParser(HTMLParser):

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.objects = []
        self.errors = []
        self._open = None  # index of object whose text we collect

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        classes = (a.get('class') or '').split()
        if tag == 'div' and 'object' in classes:
            st = _style(a.get('style') or '')
            obj = {'name': a.get('data-name') or a.get('data-category') or ''}
            for key, css in (('x', 'left'), ('y', 'top'), ('w', 'width'), ('h', 'height')):
                m = _PX.match(st.get(css, ''))
                if m is None:
                    self.errors.append(f'object {len(self.objects)}: missing/invalid {css}')
                    obj[key] = None
                else:
                    obj[key] = float(m.group(1))
            self.objects.append(obj)
            self._open = len(self.objects) - 1
        else:
            self._open = None

    def handle_endtag(self, tag):
        self._open = None

    def handle_data(self, data):
        if self._open is not None and not self.objects[self._open]['name'] and data.strip():
            self.objects[self._open]['name'] = data.strip()


def parse_layout_answer(text: str) -> list[dict]:
    """``[{'name', 'x', 'y', 'w', 'h'}]`` from an LLM answer.

    Accepts the HTML form of :data:`PROMPT` (optionally inside a code fence) or JSON
    (``{"objects": [{"name", "box": {x, y, w, h}}]}`` or a list of ``{name, x, y, w, h}``).
    Raises :class:`LayoutValidationError` (``malformed``) when the markup cannot be read.
    """
    if not isinstance(text, str) or not text.strip():
        raise LayoutValidationError(MALFORMED, 'empty answer')
    t = re.sub(r'```[a-zA-Z]*', '', text).strip()
    if t[:1] in '[{':
        try:
            data = json.loads(t)
        except json.JSONDecodeError as e:
            raise LayoutValidationError(MALFORMED, f'invalid JSON: {e.msg}') from None
        items = data.get('objects') if isinstance(data, dict) else data
        if not isinstance(items, list):
            raise LayoutValidationError(MALFORMED, 'JSON without an objects list')
        out = []
        for it in items:
            if not isinstance(it, dict):
                raise LayoutValidationError(MALFORMED, 'object is not a dict')
            box = it.get('box', it)
            if not isinstance(box, dict):
                raise LayoutValidationError(MALFORMED, 'box is not a dict')
            out.append({'name': it.get('name', ''), **{k: box.get(k) for k in 'xywh'}})
        return out
    p = _ObjectParser()
    try:
        p.feed(t)
        p.close()
    except Exception as e:  # pragma: no cover - HTMLParser is lenient
        raise LayoutValidationError(MALFORMED, str(e)) from None
    if not p.objects:
        raise LayoutValidationError(MALFORMED, 'no <div class="object"> elements')
    if p.errors:
        raise LayoutValidationError(MALFORMED, p.errors[0])
    return p.objects
