"""Referring-segmentation datasets (RefCOCO / RefCOCO+ / RefCOCOg and anything in their layout) and transforms.

One data sample is one image with N referring expressions (``group='image'``, LISA's evaluation grouping) or one
expression (``group='sentence'``, one training example per sentence). Masks are validated and run-length encoded
once at construction (COCO polygons or RLE of ``instances.json``), kept as compressed RLE in the data list and
decoded per sample by :class:`LoadReferringAnnotations`; :class:`PackReferringInputs` then writes ``gt_masks``
(N×H×W bool at the original image size) and the metainfo ``expressions`` / ``sent_ids`` that
:class:`ovseg.evaluation.metrics.ReferringSegMetric` and the models read (fields documented in
``ovseg/structures/seg_data_sample.py``). :class:`SampleReferringExpressions` draws a fixed number of an image's
expressions per sample (Sa2VA's RefCOCO training: 5, with replacement).

Bad records (an ``ann_id`` absent from ``instances.json``, a polygon with fewer than 3 points or outside the image,
an empty mask, a missing image file with ``check_files``, an empty sentence, a duplicate ``sent_id``) raise
:class:`ReferringRecordError` naming the file and record, or with ``on_bad_record='skip'`` are skipped, counted per
reason and logged once at construction (``dataset.skipped``).
"""
from __future__ import annotations

import os
import os.path as osp
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from mmcv.transforms import BaseTransform
from mmengine.dataset import BaseDataset
from mmengine.logging import print_log

from ovseg.registry import DATASETS, TRANSFORMS
from ovseg.utils.json_io import read_json

from .builder import build_pipeline
from .refer import REFER_DATASETS, load_refs, read_instances, select_refs
from .sample_seed import SeededSampleMixin
from .transforms.formatting import DEFAULT_META_KEYS, PackSegInputs

__all__ = ['ReferringRecordError', 'BadRecords', 'segmentation_rle', 'decode_rle', 'load_refs_file',
           'group_expressions', 'RefCocoDataset', 'LoadReferringAnnotations', 'SampleReferringExpressions',
           'PackReferringInputs', 'REFERRING_META_KEYS']

#: Pixels a polygon vertex may lie outside the image before the record counts as bad. COCO polygons of objects
#: touching the border sit on ``x = width`` or a fraction beyond it (rasterisation clips them); one pixel accepts
#: those and still catches polygons drawn for another image size.
POLYGON_TOLERANCE = 1.0

#: Metainfo keys :class:`PackReferringInputs` adds to :data:`DEFAULT_META_KEYS`.
REFERRING_META_KEYS = ('expressions', 'sent_ids', 'ref_ids', 'ann_ids')

_GROUPS = ('image', 'sentence', 'ref')
_TEXT_FIELDS = ('sent', 'raw', 'raw_lower')


class ReferringRecordError(ValueError):
    """A referring-segmentation record is unusable; the message names the file, the record and the problem.

    ``reason`` is the short key under which ``on_bad_record='skip'`` counts it.
    """

    def __init__(self, message: str, reason: str = 'bad record') -> None:
        super().__init__(message)
        self.reason = reason


class BadRecords:
    """``on_bad_record`` policy: ``'raise'`` raises :class:`ReferringRecordError`, ``'skip'`` counts per reason."""

    POLICIES = ('raise', 'skip')

    def __init__(self, policy: str, who: str) -> None:
        if policy not in self.POLICIES:
            raise ValueError(f"{who}: on_bad_record must be one of {self.POLICIES}, got {policy!r}")
        self.policy = policy
        self.counts: dict[str, int] = {}

    def __call__(self, reason: str, message: str) -> None:
        """Handle one bad record: ``reason`` is the short counter key, ``message`` the full error text."""
        self.error(ReferringRecordError(message, reason))

    def error(self, err: ReferringRecordError) -> None:
        """Raise ``err`` or count it under its ``reason``."""
        if self.policy == 'raise':
            raise err
        self.counts[err.reason] = self.counts.get(err.reason, 0) + 1

    def summary(self) -> str:
        return ', '.join(f'{n} {reason}' for reason, n in sorted(self.counts.items())) or 'none'


# ---------------------------------------------------------------------------------------------------- masks
def _mask_api():
    from pycocotools import mask as mask_util  # lazy: pycocotools is only needed once records are read
    return mask_util


def _polygon_rle(polys: Any, height: int, width: int, where: str, tolerance: float) -> dict:
    if not isinstance(polys, list) or not polys:
        raise ReferringRecordError(f'{where}: segmentation must be a non-empty list of polygons [[x1, y1, x2, y2, '
                                   '...], ...]', 'bad segmentation')
    for k, poly in enumerate(polys):
        if not isinstance(poly, list) or not all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                                 for v in poly):
            raise ReferringRecordError(f'{where}: polygon {k} must be a flat list of numbers [x1, y1, x2, y2, ...], '
                                       f'got {type(poly).__name__}' + (' of lists' if isinstance(poly, list) else ''),
                                       'bad segmentation')
        if len(poly) < 6 or len(poly) % 2:
            raise ReferringRecordError(f'{where}: polygon {k} has {len(poly)} coordinates; a polygon needs at least '
                                       '3 (x, y) points (an even count >= 6)', 'polygon with < 3 points')
        xy = np.asarray(poly, dtype=np.float64).reshape(-1, 2)
        if not np.isfinite(xy).all():
            raise ReferringRecordError(f'{where}: polygon {k} has a non-finite coordinate', 'bad segmentation')
        bad = (xy[:, 0] < -tolerance) | (xy[:, 0] > width + tolerance) | (xy[:, 1] < -tolerance) | (
            xy[:, 1] > height + tolerance)
        if bad.any():
            x, y = xy[int(np.argmax(bad))]
            raise ReferringRecordError(f'{where}: polygon {k} has vertex ({x:g}, {y:g}) outside the {width}x{height} '
                                       '(WxH) image', 'polygon outside the image')
    mask_util = _mask_api()
    return mask_util.merge(mask_util.frPyObjects(polys, height, width))


def _dict_rle(seg: Mapping, height: int, width: int, where: str) -> dict:
    from ovseg.evaluation.functional.referring_io import RefSegFormatError, _rle  # validates counts
    try:
        rle = _rle(seg, where)
    except RefSegFormatError as e:
        raise ReferringRecordError(str(e), 'bad RLE') from None
    if [int(v) for v in rle['size']] != [height, width]:
        raise ReferringRecordError(f"{where}: RLE size {list(rle['size'])} (H, W) is not the image's "
                                   f'[{height}, {width}]', 'bad RLE')
    return rle


def segmentation_rle(seg: Any, height: int, width: int, where: str,
                     polygon_tolerance: float = POLYGON_TOLERANCE) -> dict:
    """Compressed RLE (``counts`` str) of a COCO segmentation: a list of polygons or an RLE dict.

    Raises :class:`ReferringRecordError` (message starting with ``where``) for a polygon with fewer than 3 points
    or a vertex outside the image (beyond ``polygon_tolerance`` pixels), a malformed RLE or one of another size,
    and an empty mask. Several polygons are one object (their union), as pycocotools' ``annToRLE``.
    """
    if isinstance(seg, Mapping):
        rle = _dict_rle(seg, height, width, where)
    else:
        rle = _polygon_rle(seg, height, width, where, polygon_tolerance)
    if int(_mask_api().area(rle)) == 0:
        raise ReferringRecordError(f'{where}: the mask is empty (0 pixels inside the {width}x{height} image)',
                                   'empty mask')
    counts = rle['counts']
    return {'size': [int(v) for v in rle['size']],
            'counts': counts.decode('ascii') if isinstance(counts, bytes) else counts}


def decode_rle(rle: Mapping) -> np.ndarray:
    """H×W bool mask of a compressed RLE whose ``counts`` is str or bytes."""
    counts = rle['counts']
    data = {'size': list(rle['size']), 'counts': counts.encode('ascii') if isinstance(counts, str) else counts}
    return _mask_api().decode(data).astype(bool)


# ---------------------------------------------------------------------------------------------------- refs
def load_refs_file(path: str | os.PathLike) -> list[dict]:
    """REFER refs from a pickle (``.p``/``.pkl``: plain data only, see :func:`load_refs`) or a JSON list.

    The JSON form carries the same records as the pickle; generated data (ToyScenes referring) uses it so that
    nothing in ovseg writes pickles.
    """
    path = os.fspath(path)
    if not osp.isfile(path):
        raise FileNotFoundError(f'{path}: no such file (REFER refs)')
    if not path.endswith('.json'):
        return load_refs(path)
    refs = read_json(path, 'a list of REFER refs', expect=list, error=ReferringRecordError)
    for i, ref in enumerate(refs):
        missing = [k for k in ('ref_id', 'ann_id', 'image_id', 'split', 'sentences') if k not in ref] \
            if isinstance(ref, dict) else ['(not an object)']
        if missing:
            raise ReferringRecordError(f'{path}: ref {i} lacks {missing}')
        if not isinstance(ref['sentences'], list) or not all(isinstance(s, dict) and 'sent_id' in s
                                                               for s in ref['sentences']):
            raise ReferringRecordError(f"{path}: ref_id {ref['ref_id']!r}: sentences must be objects with sent_id")
    return refs


def group_expressions(records: Iterable[Mapping[str, Any]], group: str) -> list[dict]:
    """Data infos from per-expression records (keys ``img_path, img_id, height, width, text, sent_id, ref_id,
    ann_id, rle`` plus anything shared per image): one per expression (``'sentence'``), per image (``'image'``) or
    per referred object (``'ref'``: one region with all its sentences, e.g. as captioning references), in order of
    first appearance."""
    if group not in _GROUPS:
        raise ValueError(f'group must be one of {_GROUPS}, got {group!r}')
    per_key = ('text', 'sent_id', 'ref_id', 'ann_id', 'rle')
    out: dict[Any, dict] = {}
    data_list = []
    for n, rec in enumerate(records):
        key = rec['img_id'] if group == 'image' else (('ref', rec.get('ref_id')) if group == 'ref' else n)
        info = out.get(key)
        if info is None:
            info = {k: v for k, v in rec.items() if k not in per_key}
            info.update(expressions=[], sent_ids=[], ref_ids=[], ann_ids=[], mask_rles=[])
            out[key] = info
            data_list.append(info)
        info['expressions'].append(rec['text'])
        info['sent_ids'].append(rec['sent_id'])
        info['ref_ids'].append(rec.get('ref_id'))
        info['ann_ids'].append(rec.get('ann_id'))
        info['mask_rles'].append(rec['rle'])
    return data_list


def _sentence_text(sent: Mapping, field: str) -> str:
    if field == 'sent':
        text = sent.get('sent', sent.get('raw'))
    else:
        text = sent.get('raw', sent.get('sent'))
        if field == 'raw_lower' and isinstance(text, str):
            text = text.lower()
    return text.strip() if isinstance(text, str) else ''


@DATASETS.register_module()
class RefCocoDataset(SeededSampleMixin, BaseDataset):
    """RefCOCO / RefCOCO+ / RefCOCOg (REFER layout ``<data_root>/<dataset>/refs(<split_by>).p`` + ``instances.json``).

    Args:
        data_root: folder holding ``refcoco/``, ``refcoco+/``, ``refcocog/`` (Sa2VA: ``data/ref_seg``).
        dataset: the REFER folder name.
        split_by: ``unc`` / ``umd`` / ``google``; default per dataset as Sa2VA (refcoco and refcoco+ ``unc``,
            refcocog ``umd``; ``ovseg.datasets.refer.REFER_DATASETS``).
        split: REFER split (``train``/``val``/``testA``/``testB``/``test``; REFER's ``getRefIds`` rules).
            Default ``'train'``: Sa2VA's RefCOCO training set.
        img_prefix: image folder, relative to ``data_root`` unless absolute. Default ``coco2014/train2014``:
            every RefCOCO image is a COCO train2014 image (Sa2VA's ``data_prefix``).
        refs_file: refs file inside ``<data_root>/<dataset>`` (default ``refs(<split_by>).p``); a ``.json`` holds
            the same records as JSON (ToyScenes referring).
        instances_file: COCO instances inside ``<data_root>/<dataset>`` (default ``instances.json``).
        group: ``'image'`` (one sample = one image with all its expressions of the split: LISA / Sa2VA
            evaluation) or ``'sentence'`` (one expression per sample). Default: ``'image'`` in ``test_mode``,
            else ``'sentence'``. Sa2VA's own RefCOCO training draws 5 expressions of an image per sample: use
            ``group='image'`` with :class:`SampleReferringExpressions` for that. ``'ref'``: one sample per referred
            object with all its sentences (region captioning: the sentences are the references).
        text: ``'sent'`` (REFER's normalised sentence: Sa2VA's evaluation, ``RES.py``), ``'raw'`` or
            ``'raw_lower'`` (``raw.lower()``: Sa2VA's training set). Default: ``'sent'`` in ``test_mode``, else
            ``'raw_lower'``.
        check_files: stat every image at construction (a missing one is a bad record).
        on_bad_record: ``'raise'`` (default) or ``'skip'`` (skipped records are counted and logged).
        polygon_tolerance: pixels a polygon vertex may lie outside the image (:data:`POLYGON_TOLERANCE`).
        Other args as :class:`mmengine.dataset.BaseDataset` (``pipeline``, ``test_mode``, ``serialize_data``...).
    """

    METAINFO: dict = dict(task='referring_segmentation')

    def __init__(self,
                 data_root: str = 'data/ref_seg',
                 dataset: str = 'refcoco',
                 split_by: str | None = None,
                 split: str | None = 'train',
                 img_prefix: str = 'coco2014/train2014',
                 refs_file: str | None = None,
                 instances_file: str = 'instances.json',
                 group: str | None = None,
                 text: str | None = None,
                 check_files: bool = False,
                 on_bad_record: str = 'raise',
                 polygon_tolerance: float = POLYGON_TOLERANCE,
                 test_mode: bool = False,
                 **kwargs: Any) -> None:
        if split_by is None:
            if dataset not in REFER_DATASETS:
                raise ValueError(f'{type(self).__name__}: unknown REFER dataset {dataset!r}; give split_by or use '
                                 f'one of {sorted(REFER_DATASETS)}')
            split_by = REFER_DATASETS[dataset]
        group = group if group is not None else ('image' if test_mode else 'sentence')
        text = text if text is not None else ('sent' if test_mode else 'raw_lower')
        if group not in _GROUPS:
            raise ValueError(f'{type(self).__name__}: group must be one of {_GROUPS}, got {group!r}')
        if text not in _TEXT_FIELDS:
            raise ValueError(f'{type(self).__name__}: text must be one of {_TEXT_FIELDS}, got {text!r}')
        self.dataset_name, self.split_by, self.split = dataset, split_by, split
        self.group, self.text_field = group, text
        self.check_files = check_files
        self.polygon_tolerance = float(polygon_tolerance)
        self.bad = BadRecords(on_bad_record, type(self).__name__)
        self.instances_file = instances_file
        kwargs['pipeline'] = build_pipeline(kwargs.get('pipeline'))
        super().__init__(ann_file=osp.join(dataset, refs_file or f'refs({split_by}).p'), data_root=data_root,
                         data_prefix=dict(img=img_prefix), test_mode=test_mode, **kwargs)

    @property
    def skipped(self) -> dict[str, int]:
        """Records skipped at construction, per reason (``on_bad_record='skip'``)."""
        return dict(self.bad.counts)

    def load_data_list(self) -> list[dict]:
        refs_path = self.ann_file
        inst_path = osp.join(osp.dirname(refs_path), self.instances_file)
        refs = select_refs(load_refs_file(refs_path), self.split)
        if not refs:
            raise ReferringRecordError(f'{refs_path}: no refs in split {self.split!r}')
        instances = read_instances(inst_path)
        anns = {a.get('id'): a for a in instances['annotations'] if isinstance(a, dict)}
        images = {im.get('id'): im for im in instances['images'] if isinstance(im, dict)}
        records, seen_sents, checked_files = [], set(), {}
        n_refs = 0
        for ref in refs:
            where = f"{refs_path}: ref_id {ref['ref_id']!r} (ann_id {ref['ann_id']!r}, image_id {ref['image_id']!r})"
            ann = anns.get(ref['ann_id'])
            if ann is None:
                self.bad('ann_id absent from instances', f"{where}: ann_id {ref['ann_id']!r} is not an annotation "
                         f'of {inst_path}')
                continue
            image = images.get(ref['image_id'])
            if image is None or ann.get('image_id') != ref['image_id']:
                self.bad('image absent from instances', f"{where}: image_id {ref['image_id']!r} is missing from "
                         f"{inst_path} or is not the image of ann_id {ref['ann_id']!r}")
                continue
            try:
                height, width = int(image['height']), int(image['width'])
                file_name = str(image['file_name'])
            except (KeyError, TypeError, ValueError):
                raise ReferringRecordError(f"{inst_path}: image {ref['image_id']!r} needs file_name, height and "
                                           'width') from None
            img_path = osp.join(self.data_prefix['img'], file_name)
            if self.check_files:
                if img_path not in checked_files:
                    checked_files[img_path] = osp.isfile(img_path)
                if not checked_files[img_path]:
                    self.bad('missing image file', f'{where}: image file not found: {img_path}')
                    continue
            try:
                rle = segmentation_rle(ann.get('segmentation'), height, width,
                                       f"{where}: {inst_path} annotation {ann.get('id')!r}", self.polygon_tolerance)
            except ReferringRecordError as e:
                self.bad.error(e)
                continue
            n_refs += 1
            for sent in ref['sentences']:
                sid = sent['sent_id']
                if sid in seen_sents:
                    self.bad('duplicate sent_id', f'{where}: sent_id {sid!r} appears twice')
                    continue
                text = _sentence_text(sent, self.text_field)
                if not text:
                    self.bad('empty sentence', f'{where}: sent_id {sid!r} has an empty sentence')
                    continue
                seen_sents.add(sid)
                records.append(dict(img_path=img_path, img_id=ref['image_id'], height=height, width=width, text=text,
                                    sent_id=sid, ref_id=ref['ref_id'], ann_id=ref['ann_id'], rle=rle,
                                    source=refs_path))
        if not records:
            raise ReferringRecordError(f'{refs_path}: no usable expression in split {self.split!r} (skipped: '
                                       f'{self.bad.summary()})')
        data_list = group_expressions(records, self.group)
        print_log(f'{type(self).__name__} {self.dataset_name}({self.split_by}) split {self.split!r}: '
                  f'{len(records)} expressions of {n_refs} refs in {len({r["img_id"] for r in records})} images '
                  f'({len(data_list)} samples, group={self.group!r}, text={self.text_field!r}); skipped: '
                  f'{self.bad.summary()}', logger='current')
        return data_list


# ---------------------------------------------------------------------------------------------------- transforms
@TRANSFORMS.register_module()
class LoadReferringAnnotations(BaseTransform):
    """Decode ``mask_rles`` (one compressed RLE per expression) into ``gt_masks``: N×H×W bool at the image size.

    The RLE size must equal the loaded image's (``ori_shape``, set by ``LoadImage``): a mismatch means the
    annotation file does not describe this image file, and the error names both and the sentence.
    """

    def transform(self, results: dict) -> dict:
        rles = results.get('mask_rles')
        if rles is None:
            raise KeyError("LoadReferringAnnotations: results has no 'mask_rles' (use a referring dataset)")
        ori = results.get('ori_shape')
        masks = []
        for k, rle in enumerate(rles):
            if ori is not None and [int(v) for v in rle['size']] != [int(ori[0]), int(ori[1])]:
                sent = results.get('sent_ids', [None] * len(rles))[k]
                raise ValueError(f"LoadReferringAnnotations: {results.get('source', 'annotation')}: sent_id {sent!r} "
                                 f"has a {rle['size'][1]}x{rle['size'][0]} (WxH) mask but image "
                                 f"'{results.get('img_path')}' is {ori[1]}x{ori[0]}")
            masks.append(decode_rle(rle))
        if masks:
            results['gt_masks'] = np.stack(masks)
        else:
            h, w = ori if ori is not None else (results['height'], results['width'])
            results['gt_masks'] = np.zeros((0, int(h), int(w)), dtype=bool)
        return results


@TRANSFORMS.register_module()
class SampleReferringExpressions(BaseTransform):
    """Keep ``num`` expressions of an image sample, drawn with ``np.random`` (seeded per sample by ovseg's samplers).

    Sa2VA's RefCOCO training asks ``num_classes_per_sample=5`` expressions per image, drawn with replacement, as one
    multi-turn conversation (Sa2VA v1 ``RefCOCO_Dataset.py``); use it with ``group='image'`` before
    :class:`LoadReferringAnnotations`, so only the drawn masks are decoded. Without replacement, an image with
    fewer expressions keeps all of them in a random order.
    """

    PER_EXPRESSION = ('expressions', 'sent_ids', 'ref_ids', 'ann_ids', 'mask_rles')

    def __init__(self, num: int = 5, replace: bool = True) -> None:
        if isinstance(num, bool) or not isinstance(num, int) or num < 1:
            raise ValueError(f'SampleReferringExpressions: num must be a positive integer, got {num!r}')
        self.num, self.replace = num, bool(replace)

    def transform(self, results: dict) -> dict:
        n = len(results.get('expressions') or [])
        if n == 0:
            raise ValueError(f"SampleReferringExpressions: sample {results.get('img_path')!r} has no expressions")
        k = self.num if self.replace else min(self.num, n)
        picks = np.random.choice(n, size=k, replace=self.replace).tolist()
        for key in self.PER_EXPRESSION:
            if key in results:
                results[key] = [results[key][i] for i in picks]
        return results

    def __repr__(self) -> str:
        return f'{type(self).__name__}(num={self.num}, replace={self.replace})'


@TRANSFORMS.register_module()
class PackReferringInputs(PackSegInputs):
    """:class:`PackSegInputs` plus ``gt_masks`` (BoolTensor N×H×W) and the expressions in metainfo.

    ``gt_masks`` stay at the original image size (the metric's convention; a model resizes them to its own
    prediction size), so only image-only resizes may precede this transform; a flip is refused because neither
    the masks nor words like "left" would follow it.
    """

    def __init__(self, meta_keys: Sequence[str] = DEFAULT_META_KEYS + REFERRING_META_KEYS,
                 extra_meta_keys: Sequence[str] = ()) -> None:
        super().__init__(with_instances=False, meta_keys=meta_keys, extra_meta_keys=extra_meta_keys)

    def transform(self, results: dict) -> dict:
        if results.get('flip'):
            raise ValueError(f"PackReferringInputs: image '{results.get('img_path')}' was flipped; referring "
                             'samples cannot be flipped (masks and "left"/"right" would not follow)')
        masks = results.get('gt_masks')
        if masks is None:
            raise KeyError("PackReferringInputs: results has no 'gt_masks' (add LoadReferringAnnotations first)")
        ori = results.get('ori_shape')
        if ori is not None and tuple(masks.shape[1:]) != tuple(ori[:2]):
            raise ValueError(f"PackReferringInputs: gt_masks of '{results.get('img_path')}' are "
                             f'{tuple(masks.shape[1:])} but the original image is {tuple(ori[:2])}')
        packed = super().transform(results)
        packed['data_samples'].gt_masks = torch.from_numpy(np.ascontiguousarray(masks, dtype=bool))
        return packed

    def __repr__(self) -> str:
        return f'{type(self).__name__}(meta_keys={self.meta_keys})'
