"""Builds the class-vocabulary ``metainfo`` every ovseg dataset exposes (see docs/design.md)."""
from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

from ovseg.structures.panoptic_format import IGNORE_INDEX, LABEL_DIVISOR, check_ignore_index, default_ignore_index  # noqa: F401
from ovseg.vocabulary import load_vocabulary

from .panoptic_utils import make_palette

# Keys derived from the annotations / vocabulary; a user ``metainfo`` may not override them because the
# contiguous index space would silently disagree with the labels on disk.
DERIVED_KEYS = ('classes', 'class_synonyms', 'is_thing', 'thing_classes', 'stuff_classes', 'category_ids')


def synonyms_for(names: Sequence[str], vocabulary: str | os.PathLike | None, source: str) -> list[list[str]]:
    """Synonym lists for ``names``: from ``vocabulary`` when given (sizes must agree), else one name each."""
    if vocabulary is None:
        return [[str(n)] for n in names]
    synonyms = load_vocabulary(vocabulary)
    if len(synonyms) != len(names):
        raise ValueError(f"vocabulary '{vocabulary}' has {len(synonyms)} classes but {source} defines "
                         f'{len(names)} categories; they must match one to one in contiguous order')
    return synonyms


def build_metainfo(synonyms: list[list[str]], is_thing: Sequence[bool], category_ids: Sequence[int],
                   palette: Sequence[Sequence[int]] | None = None,
                   user_metainfo: Mapping | None = None, ignore_index: int = IGNORE_INDEX) -> dict:
    """Assemble the metainfo dict; ``user_metainfo`` may add keys or override palette/ignore/divisor."""
    classes = tuple(s[0] for s in synonyms)
    is_thing = [bool(t) for t in is_thing]
    if palette is None:
        palette = make_palette(len(classes))
    meta = dict(
        classes=classes,
        class_synonyms=[list(s) for s in synonyms],
        is_thing=is_thing,
        thing_classes=tuple(c for c, t in zip(classes, is_thing) if t),
        stuff_classes=tuple(c for c, t in zip(classes, is_thing) if not t),
        category_ids=[int(i) for i in category_ids],
        palette=[tuple(int(v) for v in c) for c in palette],
        ignore_index=int(ignore_index),
        label_divisor=LABEL_DIVISOR,
    )
    for key, value in (user_metainfo or {}).items():
        if key in DERIVED_KEYS:
            raise ValueError(f"metainfo['{key}'] is derived from the annotations and the vocabulary; "
                             "pass `vocabulary=` to rename classes instead")
        meta[key] = value
    if len(meta['palette']) != len(classes):
        raise ValueError(f"metainfo['palette'] has {len(meta['palette'])} colours for {len(classes)} classes")
    meta['ignore_index'] = check_ignore_index(meta['ignore_index'], len(classes), "metainfo['ignore_index']")
    return meta
