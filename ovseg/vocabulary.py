"""Class vocabularies (interim: the vocabulary helper's branch replaces this file with the full module)."""
from __future__ import annotations

from collections.abc import Sequence

Vocabulary = Sequence[str | Sequence[str]]


def split_synonyms(entry: str | Sequence[str]) -> tuple[str, ...]:
    """``'cat, kitty'`` or ``['cat', ' kitty']`` → ``('cat', 'kitty')`` (FC-CLIP ``split_labels``)."""
    syns = entry.replace(', ', ',').split(',') if isinstance(entry, str) else list(entry)
    return tuple(s.strip() for s in syns)


def normalize_vocabulary(vocabulary: Vocabulary) -> list[tuple[str, ...]]:
    """Validated list of synonym tuples (first = display name); bad entries raise ``ValueError``."""
    if vocabulary is None or len(vocabulary) == 0:
        raise ValueError('Empty vocabulary: an open-vocabulary classifier needs at least one class')
    classes: list[tuple[str, ...]] = []
    seen: dict[tuple[str, ...], int] = {}
    for idx, entry in enumerate(vocabulary):
        raw = entry.replace(', ', ',').split(',') if isinstance(entry, str) else list(entry)
        if len(raw) == 0:
            raise ValueError(f'Vocabulary class {idx} has no names')
        for s in raw:
            if not isinstance(s, str):
                raise ValueError(f'Vocabulary class {idx}: names must be strings, got {type(s).__name__}')
            if not s.strip():
                raise ValueError(f'Vocabulary class {idx} ({entry!r}) contains an empty name')
        clean = tuple(s.strip() for s in raw)
        key = tuple(s.lower() for s in clean)
        if key in seen:
            raise ValueError(f'Duplicate vocabulary entry: class {idx} {list(clean)} repeats class {seen[key]}')
        seen[key] = idx
        classes.append(clean)
    return classes


def seen_classes(test: Vocabulary, train: Vocabulary) -> list[bool]:
    """FC-CLIP's category overlap: a test class is seen if any synonym is a training synonym (strip + lower)."""
    train_names = {s.lower() for entry in train for s in split_synonyms(entry)}
    return [any(s.lower() in train_names for s in split_synonyms(entry)) for entry in test]
