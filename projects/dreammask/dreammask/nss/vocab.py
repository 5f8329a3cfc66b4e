"""Category names: the base vocabulary, name normalisation and synonym-aware membership tests."""
from __future__ import annotations

import json
import re
import unicodedata
from pathlib import Path
from typing import Iterable, Sequence

# The 80 COCO *instance* category names (instances_train2017.json order), DreamMask's C_train for CNA.
COCO_THING_NAMES = ('person', 'bicycle', 'car', 'motorcycle', 'airplane', 'bus', 'train', 'truck', 'boat',
                    'traffic light', 'fire hydrant', 'stop sign', 'parking meter', 'bench', 'bird', 'cat',
                    'dog', 'horse', 'sheep', 'cow', 'elephant', 'bear', 'zebra', 'giraffe', 'backpack',
                    'umbrella', 'handbag', 'tie', 'suitcase', 'frisbee', 'skis', 'snowboard', 'sports ball',
                    'kite', 'baseball bat', 'baseball glove', 'skateboard', 'surfboard', 'tennis racket',
                    'bottle', 'wine glass', 'cup', 'fork', 'knife', 'spoon', 'bowl', 'banana', 'apple',
                    'sandwich', 'orange', 'broccoli', 'carrot', 'hot dog', 'pizza', 'donut', 'cake', 'chair',
                    'couch', 'potted plant', 'bed', 'dining table', 'toilet', 'tv', 'laptop', 'mouse',
                    'remote', 'keyboard', 'cell phone', 'microwave', 'oven', 'toaster', 'sink',
                    'refrigerator', 'book', 'clock', 'vase', 'scissors', 'teddy bear', 'hair drier',
                    'toothbrush')

_ARTICLES = re.compile(r'^(a|an|the|some)\s+')
_NON_WORD = re.compile(r"[^a-z0-9' ]+")


def normalize_name(name: str) -> str:
    """Canonical form for comparisons: lower case, ASCII, no articles/punctuation, single spaces.

    ``'The Traffic-Lights.'`` -> ``'traffic lights'``. Plurals are handled by :func:`name_variants`.
    """
    s = unicodedata.normalize('NFKD', str(name)).encode('ascii', 'ignore').decode('ascii').lower()
    s = s.replace('_', ' ').replace('-', ' ')
    s = _NON_WORD.sub(' ', s)
    s = ' '.join(s.split()).strip(" '")
    s = _ARTICLES.sub('', s)
    return s


def name_variants(norm: str) -> set[str]:
    """Singular/plural variants of a normalised name (last word only), e.g. 'boxes' -> {'boxes','box'}."""
    out = {norm}
    if not norm:
        return out
    head, _, last = norm.rpartition(' ')
    pre = head + ' ' if head else ''

    def add(w):
        if w:
            out.add(pre + w)

    if last.endswith('ies') and len(last) > 4:
        add(last[:-3] + 'y')
    if last.endswith(('ses', 'xes', 'zes', 'ches', 'shes')):
        add(last[:-2])
    if last.endswith('s') and not last.endswith('ss') and len(last) > 3:
        add(last[:-1])
    # plural forms of a singular name
    if last.endswith('y') and len(last) > 2 and last[-2] not in 'aeiou':
        add(last[:-1] + 'ies')
    elif last.endswith(('s', 'x', 'z', 'ch', 'sh')):
        add(last + 'es')
    else:
        add(last + 's')
    return out


class Vocabulary:
    """An ordered list of categories, each a list of synonyms (first = display name)."""

    def __init__(self, synonyms: Sequence[Sequence[str]]):
        self.synonyms = [[str(s).strip() for s in syns if str(s).strip()] for syns in synonyms]
        self.synonyms = [s for s in self.synonyms if s]
        self.names = [s[0] for s in self.synonyms]
        self._index: dict[str, int] = {}
        for i, syns in enumerate(self.synonyms):
            for s in syns:
                for v in name_variants(normalize_name(s)):
                    self._index.setdefault(v, i)

    def __len__(self):
        return len(self.names)

    def __contains__(self, name: str) -> bool:
        return self.lookup(name) is not None

    def lookup(self, name: str) -> str | None:
        """Display name of the category ``name`` belongs to (any synonym, any case/plural), else None."""
        n = normalize_name(name)
        if n in self._index:
            return self.names[self._index[n]]
        for v in name_variants(n):
            if v in self._index:
                return self.names[self._index[v]]
        return None

    def to_json(self) -> dict:
        return {'categories': [{'name': s[0], 'synonyms': s} for s in self.synonyms]}

    @classmethod
    def from_names(cls, names: Iterable[str]) -> 'Vocabulary':
        return cls([[n] for n in names])


def _coco_synonyms() -> list[list[str]]:
    """COCO thing names with the ovseg prompt-engineering synonyms when that vocabulary file is present."""
    path = Path(__file__).resolve().parents[4] / 'ovseg' / 'datasets' / 'vocabularies' / 'coco_panoptic.txt'
    table: dict[str, list[str]] = {}
    if path.is_file():
        for syns in _read_txt(path):
            table[normalize_name(syns[0])] = syns
    out = []
    for n in COCO_THING_NAMES:
        syns = table.get(normalize_name(n), [])
        out.append([n] + [s for s in syns if normalize_name(s) != normalize_name(n)])
    return out


def _read_txt(path: Path) -> list[list[str]]:
    out = []
    for line in path.read_text(encoding='utf-8').splitlines():
        line = line.strip()
        if not line or line.startswith('#'):
            continue
        if re.match(r'^\d+\s*:', line):
            line = line.split(':', 1)[1]
        out.append([s.strip() for s in line.split(',') if s.strip()])
    return out


def load_base_vocabulary(source=None, names: Sequence | None = None) -> Vocabulary:
    """Build the base vocabulary.

    ``names``: explicit list (each item a name or a list of synonyms) -- wins over ``source``.
    ``source``: ``None``/``'coco'`` (COCO's 80 thing names), a ``.txt`` file (``idx:syn1,syn2`` or
    ``syn1,syn2`` per line), or a ``.json`` file (list of names / synonym lists, a COCO ``categories`` list,
    or an ``instances_*.json`` with ``categories``).
    """
    if names is not None:
        return Vocabulary([[n] if isinstance(n, str) else list(n) for n in names])
    if source in (None, 'coco', 'coco_things', 'coco80'):
        return Vocabulary(_coco_synonyms())
    path = Path(source)
    if not path.is_file():
        raise FileNotFoundError(
            f'base vocabulary file not found: {path}. Give a .txt (one category per line, '
            f'synonyms comma separated) or a COCO-style .json, or use base_vocabulary="coco".')
    if path.suffix == '.json':
        data = json.loads(path.read_text(encoding='utf-8'))
        if isinstance(data, dict):
            data = data.get('categories', [])
        syns = []
        for item in data:
            if isinstance(item, str):
                syns.append([item])
            elif isinstance(item, dict):
                syns.append([item['name']] + [x for x in item.get('synonyms', []) if x != item['name']])
            else:
                syns.append(list(item))
        return Vocabulary(syns)
    return Vocabulary(_read_txt(path))
