"""The in-/out-of-vocabulary study in small: ToyScenes with its thing classes deleted progressively.

ToyScenes plays Cityscapes: its 6 thing classes are deleted in :data:`TOY_DELETE_ORDER` (configurations 0..6, 6 =
stuff only, the analogue of Cityscapes' 008), its 5 stuff classes stay labelled. The zero-shot model is a tiny
FC-CLIP pretrained on another ToyScenes draw with every class labelled (the analogue of the COCO checkpoint).
:class:`ToyLabelConfigDataset` writes the label configuration's JSON next to the generated data on first use
(same deletion code as the Cityscapes converter) and reads it with ``unlisted_segments='no_target'``.
"""
from __future__ import annotations

import json
import os
import os.path as osp
from typing import Any

from ovseg.datasets.toy_scenes import CLASSES, NAME_TO_ID, ToyScenesDataset, ensure_toy_scenes
from ovseg.registry import DATASETS
from ovseg.utils.atomic_io import atomic_write_bytes

from .label_configs import config_tag, delete_segments, deleted_ids

#: ToyScenes thing classes in deletion order (configuration N deletes the first N), by dataset category id.
TOY_DELETE_ORDER: tuple[int, ...] = tuple(NAME_TO_ID[c.name] for c in CLASSES if c.isthing)


def toy_label_config_file(data_root: str, n: int, split: str = 'train') -> str:
    """Path (relative to ``data_root``) of configuration ``n``'s JSON."""
    return osp.join('inout', f'panoptic_{split}_{config_tag(n)}.json')


def write_toy_label_config(data_root: str, n: int, split: str = 'train') -> str:
    """Write configuration ``n`` of the generated ``split`` (idempotent; atomic) and return its relative path."""
    rel = toy_label_config_file(data_root, n, split)
    src = osp.join(data_root, f'panoptic_{split}.json')
    with open(src, encoding='utf-8') as f:
        raw = json.load(f)
    doc, summary = delete_segments(raw, deleted_ids(n, TOY_DELETE_ORDER), src)
    doc['label_config'] = dict(config=n, deleted={str(k): v for k, v in summary.items()})
    text = json.dumps(doc, sort_keys=True, separators=(',', ':'))
    dst = osp.join(data_root, rel)
    if not osp.isfile(dst) or open(dst, encoding='utf-8').read() != text:
        os.makedirs(osp.dirname(dst), exist_ok=True)
        atomic_write_bytes(dst, text.encode('utf-8'))
    return rel


@DATASETS.register_module()
class ToyLabelConfigDataset(ToyScenesDataset):
    """ToyScenes ``split`` with label configuration ``label_config`` applied (deleted segments give no target).

    Args:
        label_config: 0..6, the number of thing classes deleted (:data:`TOY_DELETE_ORDER`).
        ann_file: use this JSON instead (e.g. FTZS pseudo-labels from ``tools/inout_vocab/ftzs_pseudo_labels.py``).
        Other args: as :class:`ToyScenesDataset`.
    """

    def __init__(self, data_root: str = 'data/toy_scenes_inout', split: str = 'train', label_config: int = 0,
                 generate: bool | dict = True, ann_file: str | None = None, **kwargs: Any) -> None:
        if generate is not False:
            ensure_toy_scenes(data_root, **(generate if isinstance(generate, dict) else {}))
        if ann_file is None:
            ann_file = write_toy_label_config(data_root, int(label_config), split)
        self.label_config = int(label_config)
        kwargs.setdefault('unlisted_segments', 'no_target')
        super().__init__(data_root=data_root, split=split, generate=generate, ann_file=ann_file, **kwargs)
