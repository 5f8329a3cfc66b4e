"""Class vocabularies: synonym lists (FC-CLIP ``*_with_prompt_eng.txt`` style) and category metadata.

Open-vocabulary models embed every synonym of a class and take the max over them, so a dataset's
vocabulary is a list of synonym lists indexed by the contiguous class index. Files live next to this
module as ``<name>.txt`` (one class per line, ``<idx>:<syn1>,<syn2>,...``); category metadata (dataset
ids, isthing, colours) lives in ``<name>_categories.json`` where a dataset needs it.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

VOCAB_DIR = Path(__file__).resolve().parent

__all__ = ['VOCAB_DIR', 'available_vocabularies', 'load_vocabulary', 'load_category_meta',
           'resolve_vocabulary',
           'dump_vocabulary']


def available_vocabularies() -> list[str]:
    """Names accepted by :func:`load_vocabulary` without a path."""
    return sorted(p.stem for p in VOCAB_DIR.glob('*.txt'))


def resolve_vocabulary(name_or_path: str | os.PathLike) -> Path:
    """Map a builtin name (``'coco_panoptic'``) or a file path to an existing file path."""
    text = str(name_or_path)
    builtin = VOCAB_DIR / f'{text}.txt'
    if os.sep not in text and '/' not in text and not text.endswith('.txt') and builtin.is_file():
        return builtin
    path = Path(text).expanduser()
    if path.is_file():
        return path
    raise FileNotFoundError(
        f"vocabulary '{text}' is neither a builtin name ({', '.join(available_vocabularies())}) "
        f'nor an existing file')


def load_vocabulary(name_or_path: str | os.PathLike) -> list[list[str]]:
    """Read a vocabulary file into ``[[syn1, syn2, ...], ...]`` indexed by contiguous class index.

    Indices must run 0..C-1 in order; a class needs at least one non-empty name; a synonym may not repeat
    within a class and two classes may not carry the identical synonym list (either means a broken file:
    text embeddings would silently be shared or shifted).
    """
    path = resolve_vocabulary(name_or_path)
    classes: list[list[str]] = []
    seen: dict[tuple[str, ...], int] = {}
    with open(path, encoding='utf-8') as f:
        lines = f.read().splitlines()
    for lineno, raw in enumerate(lines, start=1):
        line = raw.strip()
        if not line:
            continue
        where = f'{path}:{lineno}'
        idx_text, sep, names = line.partition(':')
        if not sep:
            raise ValueError(f"{where}: expected '<index>:<name>[,<synonym>...]', got {raw!r}")
        try:
            idx = int(idx_text)
        except ValueError:
            raise ValueError(f'{where}: class index {idx_text!r} is not an integer') from None
        if idx != len(classes):
            raise ValueError(f'{where}: class index {idx} out of order; expected {len(classes)} '
                             '(indices must be contiguous from 0)')
        synonyms = [s.strip() for s in names.split(',')]
        if any(not s for s in synonyms):
            raise ValueError(f'{where}: class {idx} has an empty name in {names!r}')
        dups = sorted({s for s in synonyms if synonyms.count(s) > 1})
        if dups:
            raise ValueError(f'{where}: class {idx} repeats synonym(s) {dups}')
        key = tuple(synonyms)
        if key in seen:
            raise ValueError(f'{where}: class {idx} duplicates the entry of class {seen[key]} ({names!r})')
        seen[key] = idx
        classes.append(synonyms)
    if not classes:
        raise ValueError(f'{path}: vocabulary file has no classes')
    return classes


def dump_vocabulary(synonyms: list[list[str]], path: str | os.PathLike) -> None:
    """Write ``synonyms`` in the format :func:`load_vocabulary` reads (used by ToyScenes and converters)."""
    with open(path, 'w', encoding='utf-8') as f:
        for idx, names in enumerate(synonyms):
            f.write(f"{idx}:{','.join(names)}\n")


def load_category_meta(name: str) -> list[dict]:
    """Category metadata (``id``, ``name``, ``isthing``, ``color`` and e.g. Cityscapes ``trainId``).

    Available for ``coco_panoptic``, ``cityscapes``, ``ade20k_150``, ``mapillary_vistas``,
    ``pascal_context_59`` and ``pascal_voc_21``; entries are in contiguous-index order.
    """
    path = VOCAB_DIR / f'{name}_categories.json'
    if not path.is_file():
        options = sorted(p.name[:-len('_categories.json')] for p in VOCAB_DIR.glob('*_categories.json'))
        raise FileNotFoundError(f"no category metadata '{path.name}' (available: {', '.join(options)})")
    with open(path, encoding='utf-8') as f:
        return json.load(f)
