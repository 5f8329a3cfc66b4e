"""Class vocabularies: the one home of synonym lists, name matching and seen/unseen overlap.

Open-vocabulary models embed every synonym of a class and take the max over them, so a vocabulary is a list
of synonym lists indexed by the contiguous class index (first synonym = display name). This module is pure
Python (no torch, no mmengine) so datasets, the vocabulary hook, the NSS pipeline, the tools and the models
share one set of rules without paying for heavy imports:

* parsing: :func:`split_synonyms` (one class), :func:`parse_vocabulary_string` (``'a,b;c'`` demo format),
  :func:`normalize_vocabulary` (validation the classifier relies on);
* files: :func:`vocabulary_file`, :func:`load_vocabulary`, :func:`dump_vocabulary`,
  :func:`load_category_meta`, :func:`available_vocabularies` (builtin files in ``ovseg/datasets/vocabularies``);
* resolving any spec a config or CLI may hold: :func:`resolve_vocabulary`;
* matching names: :func:`normalize_name` (the one rule), :func:`name_variants` (singular/plural),
  :class:`SynonymIndex` (name → class), :func:`map_names` (DreamMask: names → base or novel classes);
* FC-CLIP's seen/unseen overlap: :func:`seen_classes`.
"""
from __future__ import annotations

import json
import os
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

#: Builtin vocabulary files (``<name>.txt``) and category metadata (``<name>_categories.json``).
VOCAB_DIR = Path(__file__).resolve().parent / 'datasets' / 'vocabularies'

#: One class: a ``'syn1,syn2'`` string or a sequence of synonyms.
ClassEntry = str | Sequence[str]
#: Anything :func:`resolve_vocabulary` accepts.
VocabularySpec = str | os.PathLike | Sequence[ClassEntry] | Mapping[str, Any]

__all__ = [
    'VOCAB_DIR', 'ClassEntry', 'VocabularySpec', 'normalize_name', 'name_variants', 'SynonymIndex',
    'split_synonyms', 'parse_vocabulary_string', 'normalize_vocabulary', 'vocabulary_file', 'load_vocabulary',
    'dump_vocabulary', 'load_category_meta', 'available_vocabularies', 'resolve_vocabulary', 'seen_classes',
    'map_names'
]

# ----------------------------------------------------------------------------------------------- names
_APOSTROPHES = re.compile(r"['`]")
_NON_ALNUM = re.compile(r'[^a-z0-9]+')
_LEADING_ARTICLE = re.compile(r'^(?:a|an|the|some) ')


def normalize_name(name: str) -> str:
    """The one rule for matching category names: ``'The Traffic-Lights.'`` → ``'traffic lights'``.

    Unicode is folded to ASCII (NFKD, accents dropped), lower-cased; apostrophes are deleted
    (``"lord's"`` → ``'lords'``) and every other run of non-alphanumerics (``_``, ``-``, punctuation,
    whitespace) becomes one space; one leading article (a/an/the/some) is dropped. Names that differ only in
    these respects refer to the same class wherever ovseg compares names (datasets, the NSS pipeline,
    DreamMask's name mapping). Plurals are *not* folded here: see :func:`name_variants`.
    """
    if not isinstance(name, str):
        raise TypeError(f'category name must be a string, got {type(name).__name__} ({name!r})')
    s = unicodedata.normalize('NFKD', name).encode('ascii', 'ignore').decode('ascii').lower()
    s = _NON_ALNUM.sub(' ', _APOSTROPHES.sub('', s)).strip()
    return _LEADING_ARTICLE.sub('', s)


def name_variants(norm: str) -> set[str]:
    """Singular/plural variants of a normalised name (last word only): ``'boxes'`` → {boxes, boxe, box}.

    A heuristic for free-form names (LLM answers in the NSS pipeline); the variants are only used for
    lookups, so an over-generated form (``'boxe'``) matches nothing.
    """
    out = {norm}
    if not norm:
        return out
    head, _, last = norm.rpartition(' ')
    prefix = head + ' ' if head else ''

    def add(word: str) -> None:
        if word:
            out.add(prefix + word)

    if last.endswith('ies') and len(last) > 4:
        add(last[:-3] + 'y')
    if last.endswith(('ses', 'xes', 'zes', 'ches', 'shes')):
        add(last[:-2])
    if last.endswith('s') and not last.endswith('ss') and len(last) > 3:
        add(last[:-1])
    if last.endswith('y') and len(last) > 2 and last[-2] not in 'aeiou':  # plural forms of a singular name
        add(last[:-1] + 'ies')
    elif last.endswith(('s', 'x', 'z', 'ch', 'sh')):
        add(last + 'es')
    else:
        add(last + 's')
    return out


# ----------------------------------------------------------------------------------------------- parsing
def split_synonyms(entry: ClassEntry, where: str = 'vocabulary entry') -> tuple[str, ...]:
    """One class → tuple of stripped synonyms: ``'cat, kitty'`` or ``['cat', ' kitty']`` → ``('cat', 'kitty')``.

    Strings are split on ``,`` (FC-CLIP ``split_labels``). A class without names, an empty name or a
    non-string name is a ``ValueError`` naming ``where`` (a class index, a file line): such an entry would
    give a classifier row with no text behind it.
    """
    names = entry.split(',') if isinstance(entry, str) else entry
    if isinstance(names, Mapping) or not isinstance(names, Iterable):
        raise ValueError(f'{where}: expected a string or a list of synonyms, got {type(entry).__name__}')
    names = list(names)
    if not names:
        raise ValueError(f'{where} has no names')
    out = []
    for name in names:
        if not isinstance(name, str):
            raise ValueError(f'{where}: names must be strings, got {type(name).__name__} ({name!r})')
        name = name.strip()
        if not name:
            raise ValueError(f'{where} ({entry!r}) contains an empty name')
        out.append(name)
    return tuple(out)


def parse_vocabulary_string(text: str) -> list[list[str]]:
    """``'cat,kitty;dog'`` → ``[['cat', 'kitty'], ['dog']]`` (FC-CLIP demo format).

    ``;`` separates classes and ``,`` synonyms; one trailing ``;`` is allowed, so ``'cat;'`` is a
    one-class vocabulary (a bare ``'cat'`` is read as a vocabulary *name* by :func:`resolve_vocabulary`).
    """
    parts = text.split(';')
    if len(parts) > 1 and not parts[-1].strip():
        parts = parts[:-1]
    classes = []
    for idx, part in enumerate(parts):
        if not part.strip():
            raise ValueError(f'vocabulary string {text!r}: class {idx} is an empty class entry')
        classes.append(list(split_synonyms(part, f'vocabulary string {text!r}: class {idx}')))
    return classes


def normalize_vocabulary(vocabulary: Sequence[ClassEntry]) -> list[tuple[str, ...]]:
    """Validate a vocabulary and return it as a list of synonym tuples (what the text classifier encodes).

    Each class is a list of synonyms or one comma-separated string. ``ValueError`` for an empty vocabulary,
    a class without names, an empty name, and duplicate classes (identical synonym lists up to case and
    surrounding whitespace): two identical rows can never be told apart, which always signals a broken file.
    """
    if vocabulary is None or len(vocabulary) == 0:
        raise ValueError('Empty vocabulary: an open-vocabulary classifier needs at least one class')
    classes: list[tuple[str, ...]] = []
    seen: dict[tuple[str, ...], int] = {}
    for idx, entry in enumerate(vocabulary):
        syns = split_synonyms(entry, f'Vocabulary class {idx}')
        key = tuple(s.lower() for s in syns)
        if key in seen:
            raise ValueError(f'Duplicate vocabulary entry: class {idx} {list(syns)} repeats class {seen[key]}')
        seen[key] = idx
        classes.append(syns)
    return classes


# ----------------------------------------------------------------------------------------------- files
def available_vocabularies() -> list[str]:
    """Names accepted by :func:`load_vocabulary` without a path."""
    return sorted(p.stem for p in VOCAB_DIR.glob('*.txt'))


def _looks_like_path(text: str) -> bool:
    return os.sep in text or '/' in text or text.endswith(('.txt', '.json'))


def vocabulary_file(name_or_path: str | os.PathLike) -> Path:
    """A builtin name (``'coco_panoptic'``) or a file path → the existing vocabulary file."""
    text = os.fspath(name_or_path)
    builtin = VOCAB_DIR / f'{text}.txt'
    if not isinstance(name_or_path, os.PathLike) and not _looks_like_path(text) and builtin.is_file():
        return builtin
    path = Path(text).expanduser()
    if path.is_file():
        return path
    raise FileNotFoundError(f"vocabulary '{text}' is neither a builtin name ({', '.join(available_vocabularies())}) "
                            'nor an existing file')


_INDEXED_LINE = re.compile(r'^([^,:]*):(.*)$')  # a ':' before the first ',' marks '<index>:<names>'


def _read_txt(path: Path) -> list[tuple[str, ...]]:
    """``<index>:<syn1>,<syn2>`` per line (indices 0..C-1 in order), or ``<syn1>,<syn2>`` on every line.

    Blank lines and ``#`` comments are skipped; one file uses one of the two forms.
    """
    classes: list[tuple[str, ...]] = []
    indexed: bool | None = None
    for lineno, raw in enumerate(path.read_text(encoding='utf-8').splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith('#'):
            continue
        where = f'{path}:{lineno}'
        match = _INDEXED_LINE.match(line)
        if indexed is None:
            indexed = match is not None
        if not indexed:
            if match and match.group(1).strip().isdigit():
                raise ValueError(f'{where}: indexed line {raw!r} in a file whose first class has no index '
                                 "(use '<index>:<names>' on every line or on none)")
            names = line
        else:
            if not match:
                raise ValueError(f"{where}: expected '<index>:<name>[,<synonym>...]', got {raw!r}")
            idx_text, names = match.group(1).strip(), match.group(2)
            try:
                idx = int(idx_text)
            except ValueError:
                raise ValueError(f'{where}: class index {idx_text!r} is not an integer') from None
            if idx != len(classes):
                raise ValueError(f'{where}: class index {idx} out of order; expected {len(classes)} '
                                 '(indices must be contiguous from 0)')
        classes.append(split_synonyms(names, f'{where}: class {len(classes)}'))
    return classes


def _read_json(path: Path) -> list[tuple[str, ...]]:
    """A list of names / synonym lists / ``{'name', 'synonyms'}`` dicts, or a dict with ``categories``
    (COCO instances or panoptic JSON)."""
    data = json.loads(path.read_text(encoding='utf-8'))
    if isinstance(data, Mapping):
        if 'categories' not in data:
            raise ValueError(f'{path}: a JSON object vocabulary needs a "categories" list')
        data = data['categories']
    if not isinstance(data, list):
        raise ValueError(f'{path}: expected a JSON list of classes, got {type(data).__name__}')
    classes = []
    for i, item in enumerate(data):
        where = f'{path}: class {i}'
        if isinstance(item, Mapping):
            if not isinstance(item.get('name'), str):
                raise ValueError(f'{where}: a category object needs a "name" string, got {item!r}')
            syns = [item['name'], *[s for s in item.get('synonyms', []) if s != item['name']]]
            classes.append(split_synonyms(syns, where))
        else:
            classes.append(split_synonyms(item, where))
    return classes


def load_vocabulary(name_or_path: str | os.PathLike) -> list[list[str]]:
    """Read a vocabulary (builtin name, ``.txt`` or ``.json`` file) into ``[[syn1, syn2, ...], ...]``.

    Every class needs a non-empty name; a synonym may not repeat within a class and two classes may not
    carry the same synonym list (either means a broken file: text embeddings would silently be shared or
    shifted). Errors name the file and line (or class index).
    """
    path = vocabulary_file(name_or_path)
    classes = _read_json(path) if path.suffix == '.json' else _read_txt(path)
    if not classes:
        raise ValueError(f'{path}: vocabulary file has no classes')
    seen: dict[tuple[str, ...], int] = {}
    for idx, syns in enumerate(classes):
        dups = sorted({s for s in syns if syns.count(s) > 1})
        if dups:
            raise ValueError(f'{path}: class {idx} repeats synonym(s) {dups}')
        key = tuple(s.lower() for s in syns)
        if key in seen:
            raise ValueError(f'{path}: class {idx} duplicates the entry of class {seen[key]} ({",".join(syns)!r})')
        seen[key] = idx
    return [list(s) for s in classes]


def dump_vocabulary(synonyms: Sequence[ClassEntry], path: str | os.PathLike) -> None:
    """Write ``synonyms`` in the ``<index>:<syn1>,<syn2>`` form :func:`load_vocabulary` reads back."""
    lines = []
    for idx, entry in enumerate(synonyms):
        syns = split_synonyms(entry, f'class {idx}')
        bad = [s for s in syns if ',' in s or '\n' in s or '\r' in s]
        if bad:
            raise ValueError(f'class {idx}: synonym(s) {bad} contain "," or a line break and cannot be written')
        lines.append(f"{idx}:{','.join(syns)}\n")
    with open(path, 'w', encoding='utf-8') as f:
        f.writelines(lines)


def load_category_meta(name: str) -> list[dict]:
    """Builtin category metadata (``id``, ``name``, ``isthing``, ``color``; Cityscapes also ``trainId``).

    Available for ``coco_panoptic``, ``cityscapes``, ``ade20k_150``, ``mapillary_vistas``,
    ``pascal_context_59`` and ``pascal_voc_21``; entries are in contiguous-index order.
    """
    path = VOCAB_DIR / f'{name}_categories.json'
    if not path.is_file():
        options = sorted(p.name[:-len('_categories.json')] for p in VOCAB_DIR.glob('*_categories.json'))
        raise FileNotFoundError(f"no category metadata '{path.name}' (available: {', '.join(options)})")
    with open(path, encoding='utf-8') as f:
        return json.load(f)


# ----------------------------------------------------------------------------------------------- resolving
def _builtin_thing_flags(path: Path, num_classes: int) -> list[bool] | None:
    """``isthing`` of a builtin vocabulary from its category metadata, when it has one of the right size."""
    if path.parent != VOCAB_DIR or not (VOCAB_DIR / f'{path.stem}_categories.json').is_file():
        return None
    meta = load_category_meta(path.stem)
    return [bool(m.get('isthing', 0)) for m in meta] if len(meta) == num_classes else None


def resolve_vocabulary(spec: VocabularySpec,
                       is_thing: Sequence[bool] | None = None) -> tuple[list[list[str]], list[bool] | None]:
    """Any vocabulary spec → ``(class_synonyms, is_thing or None)``, validated.

    ``spec`` is one of: a builtin name (``'coco_panoptic'``; thing flags from its category metadata), a
    ``.txt`` / ``.json`` file, an inline string (``'cat,kitty;dog'``; ``'cat;'`` for one class), a list of
    synonym lists or comma strings, or a dataset-``metainfo``-like dict (``class_synonyms`` or ``classes``,
    optional ``is_thing``). An explicit ``is_thing`` wins over flags found in the spec.
    """
    flags: Sequence[bool] | None = None
    if isinstance(spec, Mapping):
        entries = spec.get('class_synonyms') or spec.get('classes')
        if not entries:
            raise ValueError(f'vocabulary dict has neither "class_synonyms" nor "classes" (keys: {sorted(spec)})')
        syns = [list(split_synonyms([e] if isinstance(e, str) else e, f'class {i}')) for i, e in enumerate(entries)]
        flags = spec.get('is_thing')
    elif isinstance(spec, (str, os.PathLike)):
        text = os.fspath(spec)
        if isinstance(spec, str) and (';' in text or ',' in text) and not _looks_like_path(text):
            syns = parse_vocabulary_string(text)
        else:
            try:
                path = vocabulary_file(spec)
            except FileNotFoundError as exc:
                raise FileNotFoundError(f"{exc}; an inline vocabulary separates synonyms with ',' and classes "
                                        "with ';' (one class: 'name;')") from None
            syns = load_vocabulary(path)
            flags = _builtin_thing_flags(path, len(syns))
    elif isinstance(spec, Sequence):
        syns = [list(split_synonyms(e, f'class {i}')) for i, e in enumerate(spec)]
    else:
        raise TypeError(f'cannot read a vocabulary from {type(spec).__name__}: give a name, file, '
                        "'a,b;c' string, list of synonym lists or metainfo dict")
    syns = [list(s) for s in normalize_vocabulary(syns)]
    if is_thing is not None:
        flags = is_thing
    if flags is None:
        return syns, None
    flags = [bool(t) for t in flags]
    if len(flags) != len(syns):
        raise ValueError(f'is_thing has {len(flags)} entries for a vocabulary of {len(syns)} classes')
    return syns, flags


# ----------------------------------------------------------------------------------------------- matching
class SynonymIndex:
    """Which class a free-form name belongs to: any synonym, normalised (:func:`normalize_name`), singular
    or plural (:func:`name_variants`). The first class listing a form wins.

    ``synonyms[i][0]`` is the display name of class ``i``; :meth:`lookup` returns it, :meth:`index` the index.
    """

    def __init__(self, synonyms: Sequence[ClassEntry]) -> None:
        self.synonyms = [list(split_synonyms(s, f'class {i}')) for i, s in enumerate(synonyms)]
        self.names = [s[0] for s in self.synonyms]
        self._index: dict[str, int] = {}
        for i, syns in enumerate(self.synonyms):
            for s in syns:
                norm = normalize_name(s)
                if not norm:
                    raise ValueError(f'class {i}: synonym {s!r} has no letters or digits to match on')
                for v in name_variants(norm):
                    self._index.setdefault(v, i)

    @classmethod
    def from_names(cls, names: Iterable[str]) -> SynonymIndex:
        return cls([[n] for n in names])

    def __len__(self) -> int:
        return len(self.names)

    def __contains__(self, name: str) -> bool:
        return self.index(name) is not None

    def index(self, name: str) -> int | None:
        """Class index of ``name`` (exact normalised form first, then its singular/plural variants)."""
        norm = normalize_name(name)
        if norm in self._index:
            return self._index[norm]
        for v in sorted(name_variants(norm)):
            if v in self._index:
                return self._index[v]
        return None

    def lookup(self, name: str) -> str | None:
        """Display name of the class ``name`` belongs to, else None."""
        idx = self.index(name)
        return None if idx is None else self.names[idx]

    def to_json(self) -> dict:
        return {'categories': [{'name': s[0], 'synonyms': s} for s in self.synonyms]}


def seen_classes(test: Sequence[ClassEntry], train: Sequence[ClassEntry]) -> list[bool]:
    """FC-CLIP's seen/unseen split: test class ``i`` is seen iff one of its synonyms is a training synonym.

    Synonyms are compared after :func:`normalize_name`. On every builtin vocabulary against COCO panoptic
    this gives the same split as FC-CLIP's ``strip().lower()`` comparison (``fcclip/fcclip.py``
    ``category_overlapping_mask``; asserted in tests/test_vocabulary.py), so α/β pick the published classes.
    """
    train_names = {normalize_name(s) for i, entry in enumerate(train)
                   for s in split_synonyms(entry, f'train class {i}')}
    return [any(normalize_name(s) in train_names for s in split_synonyms(entry, f'test class {i}'))
            for i, entry in enumerate(test)]


def map_names(names: Iterable[str], base_synonyms: Sequence[ClassEntry]) -> dict[str, int]:
    """Contiguous class per category name: the base class one of whose synonyms matches (normalised, first
    class wins), else a novel class numbered after the base vocabulary in sorted order of the normalised
    novel names (deterministic, whatever order the names arrive in). DreamMask's synthetic-name mapping.
    """
    lookup: dict[str, int] = {}
    for idx, entry in enumerate(base_synonyms):
        for s in split_synonyms(entry, f'base class {idx}'):
            lookup.setdefault(normalize_name(s), idx)
    names = list(names)
    norms = {}
    for n in names:
        norm = normalize_name(n)
        if not norm:
            raise ValueError(f'category name {n!r} has no letters or digits to match on')
        norms[n] = norm
    novel = sorted(set(norms.values()) - set(lookup))
    novel_index = {n: len(base_synonyms) + i for i, n in enumerate(novel)}
    return {n: lookup.get(norm, novel_index.get(norm)) for n, norm in norms.items()}
