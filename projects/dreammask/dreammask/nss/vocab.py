"""The NSS base vocabulary (DreamMask's C_train for CNA and layouts) as an ``ovseg.vocabulary.SynonymIndex``.

Name matching (normalisation, plurals, synonyms) is ``ovseg.vocabulary``'s one rule; this module only knows
where the base vocabulary comes from.
"""
from __future__ import annotations

from collections.abc import Sequence

from ovseg.vocabulary import SynonymIndex, load_vocabulary, normalize_name

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


def _coco_synonyms() -> list[list[str]]:
    """COCO thing names with the prompt-engineering synonyms of ovseg's ``coco_panoptic`` vocabulary."""
    table = {normalize_name(syns[0]): syns for syns in load_vocabulary('coco_panoptic')}
    out = []
    for n in COCO_THING_NAMES:
        syns = table.get(normalize_name(n), [])
        out.append([n] + [s for s in syns if normalize_name(s) != normalize_name(n)])
    return out


def load_base_vocabulary(source: str | None = None, names: Sequence | None = None) -> SynonymIndex:
    """Build the base vocabulary.

    ``names``: explicit list (each item a name or a list of synonyms) -- wins over ``source``.
    ``source``: ``None``/``'coco'`` (COCO's 80 thing names with ovseg's synonyms), or anything
    ``ovseg.vocabulary.load_vocabulary`` reads: a builtin vocabulary name, a ``.txt`` file (``idx:syn1,syn2``
    or ``syn1,syn2`` per line) or a ``.json`` file (list of names / synonym lists, a COCO ``categories`` list,
    or an ``instances_*.json`` with ``categories``).
    """
    if names is not None:
        return SynonymIndex([[n] if isinstance(n, str) else list(n) for n in names])
    if source in (None, 'coco', 'coco_things', 'coco80'):
        return SynonymIndex(_coco_synonyms())
    return SynonymIndex(load_vocabulary(source))
