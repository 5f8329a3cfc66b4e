"""SEEM fine-tuning datasets: panoptic PNG + JSON with grounding sentences (training) and the same files as
referring-segmentation evaluation samples.

* :class:`PanopticGroundingDataset` is :class:`ovseg.datasets.CocoPanopticDataset` (custom data: the classes, their
  number and ``isthing`` come from the JSON's ``categories``; no COCO table anywhere) plus an optional grounding JSON
  (:mod:`.grounding`): every data info gains ``groundings = [dict(id, segment_id, category_id, sentences=[str],
  sent_ids=[...])]`` (``[]`` for an image without any). :class:`~.transforms.SampleGroundings` and
  :class:`~.transforms.PackSEEMInputs` turn them into ``gt_groundings`` after the geometric transforms.
* :class:`GroundingReferringDataset` reads the same grounding JSON + panoptic PNGs as referring samples (one per
  image with all its sentences, or one per sentence): REFER-like per-sentence records (mask = the segment of the
  panoptic PNG, run-length encoded once at construction) grouped by
  :func:`ovseg.datasets.referring.group_expressions`, so the core pipeline (``LoadImage``,
  ``LoadReferringAnnotations``, ``PackReferringInputs``) and ``ReferringSegMetric`` (cIoU / gIoU, shared with
  Sa2VA) apply unchanged.
"""
from __future__ import annotations

import os
import os.path as osp
from collections.abc import Mapping
from typing import Any

import numpy as np
from mmengine.logging import print_log

from ovseg.datasets.coco_panoptic import CocoPanopticDataset
from ovseg.datasets.referring import BadRecords, group_expressions
from ovseg.registry import DATASETS
from ovseg.structures.panoptic_format import read_panoptic_png

from .grounding import TEXT_FIELDS, GroundingFormatError, match_groundings, read_grounding_json, sentence_text

__all__ = ['PanopticGroundingDataset', 'GroundingReferringDataset']


def _join(root: str, path: str | os.PathLike | None) -> str | None:
    if path is None or path == '':
        return None
    path = os.fspath(path)
    return path if osp.isabs(path) or not root else osp.join(root, path)


class _GroundingMixin:
    """Shared by both datasets: read the grounding JSON and match it to the panoptic data infos."""

    grounding_file: str | None
    text_field: str
    bad: BadRecords

    def _init_grounding(self, grounding_file: Any, data_root: str, text: str, on_bad_record: str) -> None:
        if text not in TEXT_FIELDS:
            raise ValueError(f'{type(self).__name__}: text must be one of {TEXT_FIELDS}, got {text!r}')
        self.grounding_file = _join(data_root, grounding_file)
        self.text_field = text
        self.bad = BadRecords(on_bad_record, type(self).__name__)

    @property
    def skipped(self) -> dict[str, int]:
        """Grounding records skipped at construction, per reason (``on_bad_record='skip'``)."""
        return dict(self.bad.counts)

    def _groundings(self, data_list: list[dict]) -> dict[Any, list[dict]]:
        """``{img_id: [dict(id, segment_id, category_id, sentences, sent_ids)]}`` of the grounding file."""
        grounding = read_grounding_json(self.grounding_file)
        cat_ids = {i: int(c['id']) for i, c in enumerate(self._categories)}
        matched = match_groundings(grounding, data_list, self.grounding_file, cat_ids, self.bad)
        out: dict[Any, list[dict]] = {}
        for image_id, anns in matched.items():
            for ann in anns:
                sentences, sent_ids = [], []
                for sent in ann['sentences']:
                    text = sentence_text(sent, self.text_field)
                    if not text:  # 'sent' may normalise to nothing (punctuation only)
                        self.bad.error(GroundingFormatError(
                            f"{self.grounding_file}: annotation {ann['id']!r} (image {image_id!r}, segment "
                            f"{ann['segment_id']}): sent_id {sent['sent_id']!r} has no {self.text_field!r} text",
                            'empty sentence'))
                        continue
                    sentences.append(text)
                    sent_ids.append(sent['sent_id'])
                if sentences:
                    out.setdefault(image_id, []).append(dict(
                        id=ann['id'], segment_id=int(ann['segment_id']),
                        category_id=int(ann['segment']['category_id']), sentences=sentences, sent_ids=sent_ids))
        return out


@DATASETS.register_module()
class PanopticGroundingDataset(_GroundingMixin, CocoPanopticDataset):
    """COCO-panoptic PNG + JSON (any categories) with optional grounding sentences per segment.

    Args:
        grounding_file: grounding JSON (schema: :mod:`projects.seem_ft.seem_ft.data.grounding`), relative to
            ``data_root`` unless absolute; ``None``: every image gets ``groundings=[]`` (panoptic training only;
            SEEM's mapper would ground class names then, which this pipeline does not build).
        text: ``'raw_lower'`` (default: SEEM's training text, ``raw.lower()``), ``'raw'`` or ``'sent'``.
        on_bad_record: ``'raise'`` (default) or ``'skip'`` a grounding annotation that does not match the panoptic
            data (counted in ``dataset.skipped`` and logged).
        Other args as :class:`ovseg.datasets.CocoPanopticDataset` (``ann_file``, ``data_prefix=dict(img, seg,
        sem_seg)``, ``pipeline``, ``filter_cfg``, ``unlisted_segments``...).

    Data info keys added: ``groundings`` (list of ``dict(id, segment_id, category_id, sentences, sent_ids)``).
    """

    def __init__(self, grounding_file: str | os.PathLike | None = None, text: str = 'raw_lower',
                 on_bad_record: str = 'raise', data_root: str = '', **kwargs: Any) -> None:
        self._init_grounding(grounding_file, data_root, text, on_bad_record)
        super().__init__(data_root=data_root, **kwargs)

    def load_data_list(self) -> list[dict]:
        data_list = super().load_data_list()
        if self.grounding_file is None:
            for info in data_list:
                info['groundings'] = []
            return data_list
        groundings = self._groundings(data_list)
        n_sent = 0
        for info in data_list:
            info['groundings'] = groundings.get(info['img_id'], [])
            n_sent += sum(len(g['sentences']) for g in info['groundings'])
        print_log(f'{type(self).__name__} {self.grounding_file}: {sum(map(len, groundings.values()))} grounded '
                  f'segments, {n_sent} sentences in {len(groundings)} of {len(data_list)} images; skipped: '
                  f'{self.bad.summary()}', logger='current')
        return data_list


@DATASETS.register_module()
class GroundingReferringDataset(_GroundingMixin, CocoPanopticDataset):
    """A grounding JSON + its panoptic PNGs as referring-segmentation samples (``ReferringSegMetric``: cIoU/gIoU).

    Each sentence is one expression whose GT mask is its segment in the panoptic PNG at the original size. Samples
    carry the referring fields of :class:`ovseg.datasets.RefCocoDataset` (``expressions``, ``sent_ids``,
    ``ref_ids`` = grounding annotation ids, ``ann_ids`` = segment ids, ``mask_rles``), so its pipeline is the core
    one: ``[LoadImage, LoadReferringAnnotations, (image-only resize,) PackReferringInputs]``.

    Args:
        grounding_file: the grounding JSON (required), relative to ``data_root`` unless absolute.
        ann_file / data_prefix: the panoptic JSON and ``dict(img=..., seg=...)`` as :class:`CocoPanopticDataset`.
        group: ``'image'`` (one sample per image with all its sentences: the evaluation grouping) or
            ``'sentence'``. Default: ``'image'`` in ``test_mode``, else ``'sentence'``.
        text: ``'sent'`` / ``'raw'`` / ``'raw_lower'``; default ``'sent'`` in ``test_mode`` (REFER's evaluation
            text), else ``'raw_lower'``.
        on_bad_record: ``'raise'`` (default) or ``'skip'``; a sentence whose segment has no pixel in the PNG is a
            bad record too (``'empty mask'``).
        Other args as :class:`CocoPanopticDataset`. ``metainfo`` gains ``task='referring_segmentation'``.
    """

    GROUPS = ('image', 'sentence')

    def __init__(self, grounding_file: str | os.PathLike | None = None, group: str | None = None,
                 text: str | None = None, on_bad_record: str = 'raise', data_root: str = '',
                 test_mode: bool = False, metainfo: Mapping | None = None, **kwargs: Any) -> None:
        if grounding_file is None:
            raise ValueError(f'{type(self).__name__}: grounding_file (the grounding JSON) is required')
        group = group if group is not None else ('image' if test_mode else 'sentence')
        if group not in self.GROUPS:
            raise ValueError(f'{type(self).__name__}: group must be one of {self.GROUPS}, got {group!r}')
        self.group = group
        self._init_grounding(grounding_file, data_root, text if text is not None else
                             ('sent' if test_mode else 'raw_lower'), on_bad_record)
        super().__init__(data_root=data_root, test_mode=test_mode,
                         metainfo={'task': 'referring_segmentation', **(metainfo or {})}, **kwargs)

    def load_data_list(self) -> list[dict]:
        panoptic = super().load_data_list()
        groundings = self._groundings(panoptic)
        records = []
        for info in panoptic:
            anns = groundings.get(info['img_id'])
            if not anns:
                continue
            pan = read_panoptic_png(info['seg_map_path'])  # errors name the file
            height, width = pan.shape
            for ann in anns:
                mask = pan == ann['segment_id']
                if not mask.any():
                    self.bad.error(GroundingFormatError(
                        f"{self.grounding_file}: annotation {ann['id']!r} (image {info['img_id']!r}, segment "
                        f"{ann['segment_id']}): the segment has no pixel in {info['seg_map_path']}", 'empty mask'))
                    continue
                rle = _encode(mask)
                for text, sent_id in zip(ann['sentences'], ann['sent_ids']):
                    records.append(dict(img_path=info['img_path'], img_id=info['img_id'], height=height, width=width,
                                        seg_map_path=info['seg_map_path'], text=text, sent_id=sent_id,
                                        ref_id=ann['id'], ann_id=ann['segment_id'], rle=rle,
                                        source=self.grounding_file))
        if not records:
            raise GroundingFormatError(f'{self.grounding_file}: no usable sentence (skipped: {self.bad.summary()})')
        data_list = group_expressions(records, self.group)
        print_log(f'{type(self).__name__} {self.grounding_file}: {len(records)} expressions in '
                  f'{len({r["img_id"] for r in records})} images ({len(data_list)} samples, group={self.group!r}, '
                  f'text={self.text_field!r}); skipped: {self.bad.summary()}', logger='current')
        return data_list

    def filter_data(self) -> list[dict]:
        return self.data_list  # every sample has expressions; filter_empty_gt is about panoptic segments


def _encode(mask: np.ndarray) -> dict:
    """Compressed RLE (``counts`` str) of a bool mask, as :func:`ovseg.datasets.referring.decode_rle` reads."""
    from pycocotools import mask as mask_util
    rle = mask_util.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {'size': [int(v) for v in rle['size']], 'counts': rle['counts'].decode('ascii')}
