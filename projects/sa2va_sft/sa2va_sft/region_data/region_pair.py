"""The region-pair record / result contract shared by every mask-caption data source, and :class:`LoadRegionPair`.

Why: Sa2VA's mask-caption SFT (issue 13) trains on pairs of views of one region: the model captions the region
marked in view A (the *caption view*) and segments it again in view B (the *segmentation view*) from its own
caption. Video sources (SA-V masklets, our npz frame pairs, ToyScenes frame pairs) give two frames of one object;
still-image sources (SA-1B, Open Images) give the same image twice. Every source below therefore only has to say
how to decode one record; the model side reads one set of keys.

Records (``dataset.get_data_info(idx)``) are plain data (picklable, cheap to serialise): ``source`` (which decoder
to use), ``record_id`` (names the record in errors), the source's own paths and ids, plus the dataset's load
options (``deterministic`` = ``test_mode``, ``on_bad_record``). Decoding, and the random choice of which frame
pair / which annotation, happens in :class:`LoadRegionPair` with ``np.random``, so ovseg's
:class:`~ovseg.datasets.sample_seed.SeededSampleMixin` (first base of every dataset here) makes the draw a function
of the sample's stream position: a resumed run draws the same pairs.

After :class:`LoadRegionPair`, ``results`` holds (the model side depends on these keys exactly):

==================  =================================================================================
``img``             uint8 H×W×3 RGB of the caption view (frame A)
``img_path``        the file it came from; for a video ``"<mp4 path>#frame=<video frame index>"``
``ori_shape``       ``(H, W)``; also ``img_shape`` (same), ``height``, ``width``
``region_mask``     bool H×W, the region in view A (never empty)
``img2``            uint8 H2×W2×3 RGB of the segmentation view (frame B); for a still image the *same array*
                    object as ``img``
``img2_path``       as ``img_path`` for view B
``region_mask2``    bool H2×W2, the region in view B (never empty); the same array as ``region_mask`` for a
                    still image
``expression``      ground-truth text when the source has one, else ``None`` (SA-V, SA-1B, Open Images)
``category_name``   class name when known (Open Images with a class CSV, ToyScenes), else ``None``
``source``          ``'sav'``, ``'sav_npz'``, ``'sa1b'``, ``'open_images'`` or ``'toy_pairs'``
``record_id``       e.g. ``"sav_000001_manual.json masklet 3"``, ``"sa_223750.json ann 12345"``,
                    ``"train-annotations-object-segmentation.csv row 17"``
``sample_idx``      the dataset index (set by mmengine's ``get_data_info``)
==================  =================================================================================

Decoders also leave ``annotation_path`` (the file the masks came from: SA-V/SA-1B JSON, mask PNG, npz) and video
sources ``frame_indices`` (video frame index of A and B). A mask that is empty at load time
(only possible for sources that do not decode masks at construction: Open Images, npz) raises
:class:`~ovseg.datasets.referring.ReferringRecordError` (reason ``'empty mask'``), or with the dataset's
``on_bad_record='skip'`` makes the pipeline return ``None`` so mmengine's ``BaseDataset`` draws another sample
(training only; ``test_mode`` refuses ``None``).
"""
from __future__ import annotations

import logging
import os.path as osp
from collections.abc import Callable, Mapping
from typing import Any

import cv2
import numpy as np
from mmcv.transforms import BaseTransform
from mmengine.dataset import BaseDataset
from mmengine.logging import print_log

from ovseg.datasets.builder import build_pipeline
from ovseg.datasets.referring import BadRecords, ReferringRecordError
from ovseg.datasets.sample_seed import SeededSampleMixin
from ovseg.registry import TRANSFORMS

__all__ = ['REGION_SOURCES', 'REGION_PAIR_KEYS', 'REGION_LOADERS', 'register_region_loader', 'read_rgb',
           'RegionPairDataset', 'LoadRegionPair', 'check_region_pair']

#: Every ``source`` value a record may carry.
REGION_SOURCES = ('sav', 'sav_npz', 'sa1b', 'open_images', 'toy_pairs')
#: Keys :class:`LoadRegionPair` guarantees in ``results``.
REGION_PAIR_KEYS = ('img', 'img_path', 'ori_shape', 'img_shape', 'height', 'width', 'region_mask', 'img2',
                    'img2_path', 'region_mask2', 'expression', 'category_name', 'source', 'record_id', 'sample_idx')

#: ``source`` → decoder ``fn(record) -> dict`` with ``img, img_path, region_mask, img2, img2_path, region_mask2``
#: (and optionally ``expression``, ``category_name``, ``record_id``, ``annotation_path``, ``frame_indices``).
#: Filled by the source modules.
REGION_LOADERS: dict[str, Callable[[dict], dict]] = {}


def register_region_loader(*sources: str) -> Callable:
    """Decorator: register ``fn(record) -> dict`` as the decoder of records whose ``source`` is one of ``sources``."""
    def wrap(fn: Callable[[dict], dict]) -> Callable[[dict], dict]:
        for s in sources:
            if s not in REGION_SOURCES:
                raise ValueError(f'unknown region source {s!r}; known: {REGION_SOURCES}')
            REGION_LOADERS[s] = fn
        return fn
    return wrap


def read_rgb(path: str, where: str) -> np.ndarray:
    """uint8 H×W×3 RGB of an image file; a missing or undecodable file raises :class:`ReferringRecordError` naming
    ``where`` (the record) and the file."""
    if not osp.isfile(path):
        raise ReferringRecordError(f'{where}: image file not found: {path}', 'missing image')
    bgr = cv2.imread(path, cv2.IMREAD_COLOR)
    if bgr is None:
        raise ReferringRecordError(f'{where}: cannot decode image {path} (not an image file?)', 'unreadable image')
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def check_region_pair(out: Mapping[str, Any], where: str) -> None:
    """Check a decoder's output: uint8 RGB views, bool masks of their view's size, both masks non-empty.

    An empty mask raises :class:`ReferringRecordError` with reason ``'empty mask'`` (the only load-time problem
    ``on_bad_record='skip'`` may skip); anything else is a programming or data-layout error and raises too.
    """
    for img_key, mask_key in (('img', 'region_mask'), ('img2', 'region_mask2')):
        img, mask = out[img_key], out[mask_key]
        if not (isinstance(img, np.ndarray) and img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3):
            raise ReferringRecordError(f'{where}: {img_key} must be uint8 H×W×3, got '
                                       f'{getattr(img, "dtype", type(img))} {getattr(img, "shape", "")}', 'bad image')
        if not (isinstance(mask, np.ndarray) and mask.dtype == bool and mask.shape == img.shape[:2]):
            raise ReferringRecordError(f'{where}: {mask_key} must be a bool mask of the image size {img.shape[:2]}, '
                                       f'got {getattr(mask, "dtype", type(mask))} {getattr(mask, "shape", "")}',
                                       'mask size mismatch')
        if not mask.any():
            view = 'A (caption view)' if img_key == 'img' else 'B (segmentation view)'
            raise ReferringRecordError(f'{where}: the region mask of view {view} is empty (annotation '
                                       f'{out.get("annotation_path")}, image {out[img_key + "_path"]})', 'empty mask')


@TRANSFORMS.register_module()
class LoadRegionPair(BaseTransform):
    """Decode a region-pair record (any source of this package) into the keys listed in the module docstring.

    The first step of every mask-caption pipeline. Which pair of frames (SA-V) or which annotation (SA-1B) is
    drawn here with ``np.random`` (seeded per sample by :class:`SeededSampleMixin`), or chosen deterministically
    when the record says ``deterministic`` (the dataset's ``test_mode``).
    """

    def transform(self, results: dict) -> dict | None:
        source = results.get('source')
        loader = REGION_LOADERS.get(source)
        if loader is None:
            raise KeyError(f'LoadRegionPair: record {results.get("record_id")!r} has source {source!r}; expected one '
                           f'of {sorted(REGION_LOADERS)} (use a region_data dataset)')
        try:
            out = loader(results)
            where = f"{source}: {out.get('record_id', results.get('record_id'))}"
            check_region_pair(out, where)
        except ReferringRecordError as e:
            if e.reason == 'empty mask' and results.get('on_bad_record') == 'skip':
                print_log(f'LoadRegionPair: skipping sample {results.get("sample_idx")}: {e}', logger='current',
                          level=logging.WARNING)
                return None
            raise
        results.update(out)
        h, w = out['img'].shape[:2]
        results['ori_shape'] = results['img_shape'] = (h, w)
        results['height'], results['width'] = h, w
        results.setdefault('expression', None)
        results.setdefault('category_name', None)
        return results

    def __repr__(self) -> str:
        return f'{type(self).__name__}()'


class RegionPairDataset(SeededSampleMixin, BaseDataset):
    """Base of the region-pair datasets: bad-record policy, ``skipped`` counts, load options in every record.

    Args:
        on_bad_record: ``'raise'`` (default: a broken record stops construction with an error naming the file and
            the record, so data problems are seen before training) or ``'skip'`` (skipped, counted per reason in
            ``skipped`` and logged once at construction; an empty mask found only at load makes the pipeline
            return ``None`` so mmengine draws another sample).
        Other args as :class:`mmengine.dataset.BaseDataset` (``pipeline``, ``test_mode``, ``lazy_init``,
        ``serialize_data``...). ``test_mode`` makes every choice deterministic (see each dataset).
    """

    #: The ``source`` value of this dataset's records.
    SOURCE: str = ''
    #: Same metainfo for every region source, so that :class:`MultiSourceDataset` mixes them without a choice.
    METAINFO: dict = dict(task='region_pair')

    def __init__(self, on_bad_record: str = 'raise', **kwargs: Any) -> None:
        self.bad = BadRecords(on_bad_record, type(self).__name__)
        self.filtered: dict[str, int] = {}
        kwargs['pipeline'] = build_pipeline(kwargs.get('pipeline'))
        super().__init__(**kwargs)

    @property
    def skipped(self) -> dict[str, int]:
        """Records (or annotations) left out at construction, per reason: bad records (``on_bad_record='skip'``)
        and the ones the dataset's filters removed."""
        out = dict(self.bad.counts)
        for k, v in self.filtered.items():
            out[k] = out.get(k, 0) + v
        return out

    def _filter(self, reason: str, n: int = 1) -> None:
        """Count ``n`` records or annotations removed by a filter (not an error, never raises)."""
        self.filtered[reason] = self.filtered.get(reason, 0) + n

    def _skipped_summary(self) -> str:
        return ', '.join(f'{n} {reason}' for reason, n in sorted(self.skipped.items())) or 'none'

    def load_options(self) -> dict[str, Any]:
        """Dataset-level options every record carries to :class:`LoadRegionPair` (subclasses add theirs)."""
        return dict(deterministic=bool(self.test_mode), on_bad_record=self.bad.policy)

    def get_data_info(self, idx: int) -> dict:
        info = super().get_data_info(idx)
        info.update(self.load_options())
        return info
