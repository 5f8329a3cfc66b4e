"""SEEM training transforms: draw grounding sentences per sample and pack them as ``gt_groundings``.

Pipeline (LSJ, as SEEM's ``coco_interactive`` mapper)::

    LoadImage, LoadPanopticAnnotations, RandomFlip, RandomResizeScale, FixedSizeCrop,
    SampleGroundings(max_num=5), PackSEEMInputs()

``PackSEEMInputs`` builds every grounding mask from ``gt_pan_id`` *after* all geometric transforms
(``gt_pan_id == segment_id``), so masks, image and panoptic targets always agree; SEEM instead rasterises polygons
and pushes them through the same transforms.
"""
from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
import torch
from mmcv.transforms import BaseTransform
from mmengine.structures import InstanceData

from ovseg.datasets.transforms.formatting import DEFAULT_META_KEYS, PackSegInputs
from ovseg.registry import TRANSFORMS

__all__ = ['SampleGroundings', 'PackSEEMInputs', 'SEEM_GROUNDING_MAX_LEN', 'swap_left_right']

#: ``MODEL.DECODER.GROUNDING.MAX_LEN`` of SEEM's ``configs/seem/focall_unicl_lang_v1.yaml``. Its mapper keeps
#: ``random.randint(1, MAX_LEN - 1)`` groundings per image (1..4).
SEEM_GROUNDING_MAX_LEN = 5

_LEFT_RIGHT = re.compile(r'\b(left|right)(most)?\b', re.IGNORECASE)


def swap_left_right(text: str) -> str:
    """Exchange the words "left" and "right" (also "leftmost"/"rightmost"), keeping their case."""
    def repl(m: re.Match) -> str:
        word = m.group(1)
        other = 'right' if word.lower() == 'left' else 'left'
        if word.isupper():
            other = other.upper()
        elif word[0].isupper():
            other = other.capitalize()
        return other + (m.group(2) or '')
    return _LEFT_RIGHT.sub(repl, text)


@TRANSFORMS.register_module()
class SampleGroundings(BaseTransform):
    """Keep a random subset of the sample's ``groundings`` with one random sentence each (``np.random``).

    As SEEM's mapper (``coco_panoptic_interactive_dataset_mapper.py``): the number kept is drawn uniformly from
    ``1 .. max_num - 1`` (``random.randint(1, MAX_LEN - 1)``; ``fixed_num=True`` always asks ``max_num - 1``),
    capped by the number of grounded segments; which segments, their order and the sentence of each are uniform
    draws. The draws use ``np.random``, which ovseg's samplers seed per sample (:class:`SeededIndex`), so a sample
    gets the same groundings for any number of workers and after a resume.

    Args:
        max_num: SEEM's ``GROUNDING.MAX_LEN`` (default :data:`SEEM_GROUNDING_MAX_LEN` = 5).
        fixed_num: keep ``max_num - 1`` (or all, if fewer) instead of a random count.
        visible_only: when the transform runs after the crop (``gt_pan_id`` present), draw only among segments
            that still have pixels, so fewer groundings are dropped by :class:`PackSEEMInputs`.
    """

    def __init__(self, max_num: int = SEEM_GROUNDING_MAX_LEN, fixed_num: bool = False,
                 visible_only: bool = True) -> None:
        if isinstance(max_num, bool) or not isinstance(max_num, int) or max_num < 2:
            raise ValueError(f'SampleGroundings: max_num must be an integer >= 2 (SEEM keeps 1..max_num-1), '
                             f'got {max_num!r}')
        self.max_num, self.fixed_num, self.visible_only = max_num, bool(fixed_num), bool(visible_only)

    def transform(self, results: dict) -> dict:
        groundings = list(results.get('groundings') or [])
        if self.visible_only and 'gt_pan_id' in results and groundings:
            present = set(np.unique(results['gt_pan_id']).tolist())
            groundings = [g for g in groundings if g['segment_id'] in present]
        if not groundings:
            results['groundings'] = []
            return results
        k = self.max_num - 1 if self.fixed_num else int(np.random.randint(1, self.max_num))
        k = min(k, len(groundings))
        picks = np.random.permutation(len(groundings))[:k].tolist()
        out = []
        for i in picks:
            g = groundings[i]
            j = int(np.random.randint(len(g['sentences'])))
            chosen = dict(g, sentences=[g['sentences'][j]])
            if 'sent_ids' in g:
                chosen['sent_ids'] = [g['sent_ids'][j]]
            out.append(chosen)
        results['groundings'] = out
        return results

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(max_num={self.max_num}, fixed_num={self.fixed_num}, '
                f'visible_only={self.visible_only})')


@TRANSFORMS.register_module()
class PackSEEMInputs(PackSegInputs):
    """:class:`PackSegInputs` (``gt_instances`` on by default) plus ``gt_groundings``.

    ``gt_groundings`` is an ``InstanceData`` with one row per (grounded segment, sentence) of ``results
    ['groundings']`` (one per segment after :class:`SampleGroundings`): ``masks`` BoolTensor(G, H, W) =
    ``gt_pan_id == segment_id`` at the input size (after every geometric transform), ``texts`` (list of G str),
    ``segment_ids``, ``hashes`` (= ``segment_ids``: the model's "same object" key, so several sentences of one
    segment share their targets, as SEEM's text hashes) and ``labels`` (contiguous class), LongTensors of G;
    metainfo ``mode='text'`` (sentences, not class names: SEEM's ``GROUNDING.TEXT_WEIGHT``). A segment the crop
    removed entirely is dropped (SEEM would keep an empty mask) and counted in metainfo ``groundings_dropped``; an
    image without groundings gets G = 0, i.e. no grounding target (SEEM's mapper would ground prompt-templated class
    names instead, ``mode='class'``; that fallback is not built here).

    Args:
        with_instances / keep_empty_segments / meta_keys / extra_meta_keys: as :class:`PackSegInputs`.
        on_flip: what a horizontal flip does to the sentences: ``'swap'`` (default) exchanges "left" and "right"
            so the text still describes the flipped image; ``'keep'`` leaves them as SEEM does (its mapper flips
            the masks, not the words); ``'error'`` refuses flipped samples.
    """

    ON_FLIP = ('swap', 'keep', 'error')

    def __init__(self, with_instances: bool = True, keep_empty_segments: bool = True,
                 meta_keys: Sequence[str] = DEFAULT_META_KEYS + ('groundings_dropped',),
                 extra_meta_keys: Sequence[str] = (), on_flip: str = 'swap') -> None:
        if on_flip not in self.ON_FLIP:
            raise ValueError(f'PackSEEMInputs: on_flip must be one of {self.ON_FLIP}, got {on_flip!r}')
        super().__init__(with_instances=with_instances, keep_empty_segments=keep_empty_segments,
                         meta_keys=meta_keys, extra_meta_keys=extra_meta_keys)
        self.on_flip = on_flip

    def transform(self, results: dict) -> dict:
        groundings = results.get('groundings') or []
        if 'gt_pan_id' not in results and groundings:
            raise KeyError(f"PackSEEMInputs: sample {results.get('img_path')!r} has groundings but no 'gt_pan_id' "
                           '(add LoadPanopticAnnotations before the geometric transforms)')
        flipped = bool(results.get('flip'))
        if flipped and groundings and self.on_flip == 'error':
            raise ValueError(f"PackSEEMInputs: image {results.get('img_path')!r} was flipped and has groundings "
                             "(on_flip='error')")
        hw = results['img'].shape[:2]
        masks, texts, seg_ids, labels = [], [], [], []
        dropped = 0
        if groundings:
            pan = results['gt_pan_id']
            present = set(np.unique(pan).tolist())
            for g in groundings:
                sid = int(g['segment_id'])
                if sid not in present:
                    dropped += 1
                    continue
                mask = pan == sid
                for text in g['sentences']:
                    masks.append(mask)
                    texts.append(swap_left_right(text) if flipped and self.on_flip == 'swap' else text)
                    seg_ids.append(sid)
                    labels.append(int(g['category_id']))
        results['groundings_dropped'] = dropped
        packed = super().transform(results)
        gt = InstanceData(metainfo=dict(mode='text'))
        gt.masks = (torch.from_numpy(np.stack(masks)) if masks else torch.zeros((0,) + tuple(hw), dtype=torch.bool))
        gt.texts = texts
        gt.segment_ids = torch.tensor(seg_ids, dtype=torch.long)
        gt.hashes = gt.segment_ids.clone()  # SEEM's "same object" key: sentences of one segment share targets
        gt.labels = torch.tensor(labels, dtype=torch.long)
        packed['data_samples'].gt_groundings = gt
        return packed

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(with_instances={self.with_instances}, '
                f'keep_empty_segments={self.keep_empty_segments}, on_flip={self.on_flip!r})')
