"""SA-V masklets as region pairs: the official release (JSON + mp4) and our npz frame-pair format.

**Official SA-V** (``facebookresearch/sam2:sav_dataset/README.md``; summary in the Sa2VA reference §4.2). The train
release is ``{video_id}.mp4`` (24 fps) plus ``{video_id}_manual.json`` and ``{video_id}_auto.json``; each JSON holds
``video_id``, ``video_frame_count``, ``video_height``, ``video_width`` and ``masklet``: a list over the *annotated*
frames (6 fps: video frames 0, 4, 8, ...) of a list over objects of COCO RLE ``{'size': [h, w], 'counts': str}``,
with ``masklet_id`` and ``masklet_num``. Annotated frame ``k`` is video frame ``k * frame_stride`` (4). Sa2VA reads
the same files (``ReSAM2_Dataset.py``: ``cv2.VideoCapture`` frames ``[::4]``, ``maskUtils.decode`` per object).

:class:`SAVMaskletDataset`: one record per (JSON, object index). The object's *valid* frames are the annotated
frames where its RLE is non-empty (and inside the video); a record needs ``min_valid_frames`` of them (2, or 1 with
``allow_same_frame``) and at least one pair within ``max_frame_gap``. The JSONs are read once at construction to
build this index (RLE areas only, nothing decoded); at load time :class:`~.region_pair.LoadRegionPair` draws a pair,
re-reads that object's two RLEs and seeks the two frames in the mp4 (``cv2.VideoCapture``,
``CAP_PROP_POS_FRAMES``, BGR→RGB).

**npz frame pairs** (ours; written by ``tools/dataset_converters/sav_to_frame_pairs.py`` and the ToyScenes
frame-pair generator; read by :class:`SAVFramePairNpzDataset`). One zip of ``.npy`` members, exactly what
``np.savez_compressed`` writes (deflate), except that member timestamps are fixed so equal content gives equal
bytes; written atomically (``ovseg.utils.atomic_io``). Keys:

=================  ===========  ==========================================================================
``frames``         uint8        (2, H, W, 3) RGB; ``frames[0]`` is view A (caption), ``frames[1]`` view B
``masks``          bool         (2, H, W), the object in each frame (both non-empty)
``frame_indices``  int64        (2,) video frame index of each frame
``video_id``       str          0-d unicode array
``object_id``      int64        0-d, the object's index in the source's per-frame lists (SA-V: ``masklet[f]``)
``expression``     str          optional 0-d, ground-truth text of the object
``category_name``  str          optional 0-d, class name of the object
=================  ===========  ==========================================================================

Loaded with ``allow_pickle=False``.
"""
from __future__ import annotations

import glob
import io
import os
import os.path as osp
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from mmengine.logging import print_log

from ovseg.datasets.referring import ReferringRecordError, decode_rle, segmentation_rle
from ovseg.registry import DATASETS
from ovseg.utils.atomic_io import atomic_write_bytes
from ovseg.utils.json_io import read_json

from .region_pair import RegionPairDataset, register_region_loader

__all__ = ['SAV_FRAME_STRIDE', 'NPZ_REQUIRED_KEYS', 'NPZ_OPTIONAL_KEYS', 'read_video_frames', 'choose_frame_pair',
           'frame_pair_candidates', 'read_sav_json', 'load_sav_pair', 'write_frame_pair_npz', 'read_frame_pair_npz',
           'SAVMaskletDataset', 'SAVFramePairNpzDataset']

#: SA-V videos are 24 fps and annotated at 6 fps: annotated frame k is video frame 4k.
SAV_FRAME_STRIDE = 4
NPZ_REQUIRED_KEYS = ('frames', 'masks', 'frame_indices', 'video_id', 'object_id')
NPZ_OPTIONAL_KEYS = ('expression', 'category_name')
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)


# ---------------------------------------------------------------------------------------------------- video
def read_video_frames(path: str, frame_indices: Sequence[int], where: str, sequential: bool = False
                      ) -> list[np.ndarray]:
    """uint8 RGB frames ``frame_indices`` (video frame numbers, any order, repeats allowed) of one video file.

    The one video reader of this package (datasets and converter). Each frame is reached with a
    ``CAP_PROP_POS_FRAMES`` seek then ``read`` (visiting frames in increasing order), or, with ``sequential``, by
    decoding every frame from the start (slower, exact even for codecs whose seeking is inexact). A missing file,
    a file OpenCV cannot open (not a video, truncated) or a frame that cannot be read raises
    :class:`ReferringRecordError` naming ``where``, the file and the frame.
    """
    if not osp.isfile(path):
        raise ReferringRecordError(f'{where}: video file not found: {path}', 'missing video')
    wanted = sorted({int(f) for f in frame_indices})
    if wanted and wanted[0] < 0:
        raise ReferringRecordError(f'{where}: negative frame index {wanted[0]} for video {path}', 'bad frame index')
    cap = cv2.VideoCapture(path)
    got: dict[int, np.ndarray] = {}
    try:
        if not cap.isOpened():
            raise ReferringRecordError(f'{where}: cannot open video {path} (unreadable or not a video file)',
                                       'unreadable video')
        pos = 0
        for f in wanted:
            if sequential:
                while pos < f:
                    if not cap.grab():
                        break
                    pos += 1
            else:
                cap.set(cv2.CAP_PROP_POS_FRAMES, f)
            ok, bgr = cap.read() if (not sequential or pos == f) else (False, None)
            pos = f + 1
            if not ok or bgr is None:
                n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
                raise ReferringRecordError(f'{where}: cannot read frame {f} of video {path} (the video reports {n} '
                                           'frames; truncated or unreadable?)', 'unreadable video')
            got[f] = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    finally:
        cap.release()
    return [got[int(f)] for f in frame_indices]


# ---------------------------------------------------------------------------------------------------- pairs
def _partners(valid: Sequence[int], i: int, max_gap: int | None, allow_same: bool) -> list[int]:
    return [j for j in valid if (allow_same or j != i) and (max_gap is None or abs(j - i) <= max_gap)]


def frame_pair_candidates(valid: Sequence[int], max_gap: int | None = None, allow_same: bool = False
                          ) -> list[tuple[int, int]]:
    """Every ordered-by-time pair ``(a, b)``, ``a <= b``, of valid annotated frames within ``max_gap``
    (``a == b`` only with ``allow_same``)."""
    v = sorted(valid)
    return [(a, b) for n, a in enumerate(v) for b in v[n if allow_same else n + 1:]
            if max_gap is None or b - a <= max_gap]


def choose_frame_pair(valid: Sequence[int], max_gap: int | None = None, allow_same: bool = False,
                      deterministic: bool = False) -> tuple[int, int]:
    """Annotated frames ``(A, B)`` of a masklet: A is the caption view, B the segmentation view.

    Random (``np.random``, seeded per sample by :class:`SeededSampleMixin`): A uniform among the valid frames that
    have a partner, B uniform among A's partners (either direction in time). ``deterministic``: the first valid
    frame that has a partner and its farthest partner (first and last valid frame when ``max_gap`` is None).
    """
    valid = sorted(valid)
    starts = [i for i in valid if _partners(valid, i, max_gap, allow_same)]
    if not starts:
        raise ValueError(f'no frame pair among valid frames {valid} (max_gap={max_gap}, allow_same={allow_same})')
    if deterministic:
        a = starts[0]
        return a, max(_partners(valid, a, max_gap, allow_same), key=lambda j: (abs(j - a), j))
    a = starts[np.random.randint(len(starts))]
    partners = _partners(valid, a, max_gap, allow_same)
    return a, partners[np.random.randint(len(partners))]


# ---------------------------------------------------------------------------------------------------- SA-V JSON
def read_sav_json(path: str) -> dict:
    """An SA-V masklet JSON (``{video_id}_manual.json`` / ``_auto.json``); errors name the file."""
    doc = read_json(path, 'SA-V masklet JSON', expect=dict, error=ReferringRecordError)
    if not isinstance(doc.get('masklet'), list) or not all(isinstance(f, list) for f in doc['masklet']):
        raise ReferringRecordError(f"{path}: 'masklet' must be a list over annotated frames of lists over objects "
                                   'of RLE (SA-V format)', 'bad json')
    return doc


def _rle_bytes(rle: Any, size: tuple[int, int] | None, where: str) -> dict:
    """The RLE as pycocotools wants it (bytes counts), after checking its form and size."""
    if not isinstance(rle, Mapping) or 'size' not in rle or not isinstance(rle.get('counts'), (str, bytes)):
        raise ReferringRecordError(f"{where}: expected a compressed RLE {{'size': [h, w], 'counts': str}}, got "
                                   f'{type(rle).__name__}', 'bad RLE')
    try:
        hw = (int(rle['size'][0]), int(rle['size'][1]))
    except (TypeError, ValueError, IndexError):
        raise ReferringRecordError(f"{where}: RLE size {rle['size']!r} is not [h, w]", 'bad RLE') from None
    if size is not None and hw != tuple(size):
        raise ReferringRecordError(f'{where}: RLE size {list(hw)} (H, W) differs from the video size {list(size)}',
                                   'bad RLE')
    counts = rle['counts']
    return {'size': list(hw), 'counts': counts.encode('ascii') if isinstance(counts, str) else counts}


def _masklet_rle(doc: Mapping, frame: int, obj: int, where: str) -> dict:
    try:
        return doc['masklet'][frame][obj]
    except (KeyError, IndexError, TypeError):
        raise ReferringRecordError(f'{where}: no RLE for annotated frame {frame}', 'bad json') from None


def load_sav_pair(record: Mapping[str, Any], frame_a: int, frame_b: int, *, doc: Mapping | None = None,
                  frames: Mapping[int, np.ndarray] | None = None) -> dict:
    """Decode annotated frames ``frame_a`` / ``frame_b`` of an SA-V record into the region-pair keys.

    ``doc`` (the parsed JSON) and ``frames`` (video frame index → RGB, from :func:`read_video_frames`) let a caller
    that loads many pairs of one video (the npz converter) read each file once; otherwise both are read here.
    """
    where = f"{record['json_path']}: masklet {record['object_index']} (video {record['video_path']})"
    doc = doc if doc is not None else read_sav_json(record['json_path'])
    obj, stride = int(record['object_index']), int(record['frame_stride'])
    masks = []
    for k in (frame_a, frame_b):
        at = f'{where}, annotated frame {k}'
        rle = _rle_bytes(_masklet_rle(doc, k, obj, at), None, at)
        # full check of the run lengths (pycocotools decodes malformed counts out of bounds), then decode
        masks.append(decode_rle(segmentation_rle(rle, *rle['size'], at)))
    vf = [int(frame_a) * stride, int(frame_b) * stride]
    if frames is None:
        imgs = read_video_frames(record['video_path'], vf, where, sequential=bool(record.get('sequential_decode')))
    else:
        imgs = [frames[f] for f in vf]
    for mask, img, f in zip(masks, imgs, vf):
        if mask.shape != img.shape[:2]:
            raise ReferringRecordError(f'{where}: mask of video frame {f} is {mask.shape[1]}x{mask.shape[0]} (WxH) '
                                       f'but the frame is {img.shape[1]}x{img.shape[0]}', 'mask size mismatch')
    path = record['video_path']
    return dict(img=imgs[0], img_path=f'{path}#frame={vf[0]}', region_mask=masks[0], img2=imgs[1],
                img2_path=f'{path}#frame={vf[1]}', region_mask2=masks[1], frame_indices=(vf[0], vf[1]),
                expression=None, category_name=None, annotation_path=record['json_path'])


@register_region_loader('sav')
def _load_sav(record: dict) -> dict:
    a, b = choose_frame_pair(record['valid_frames'], record.get('max_frame_gap'),
                             bool(record.get('allow_same_frame')), bool(record.get('deterministic')))
    return load_sav_pair(record, a, b)


def _read_id_list(path: str) -> list[str]:
    if not osp.isfile(path):
        raise FileNotFoundError(f'{path}: no such file (video id list)')
    with open(path, encoding='utf-8') as f:
        ids = [line.strip() for line in f]
    return [i for i in ids if i and not i.startswith('#')]


@DATASETS.register_module()
class SAVMaskletDataset(RegionPairDataset):
    """SA-V masklets (official JSON + mp4) as region pairs: two annotated frames of one object.

    Args:
        data_root: the SA-V folder (e.g. ``data/sav/sav_train/sav_000``); ``video_dir``, ``ann_dir`` and
            ``video_ids`` are relative to it unless absolute.
        video_dir: where ``<video_id>.mp4`` are (the release puts them beside the JSONs: default ``''``).
        ann_dir: where ``<video_id>_<type>.json`` are (default ``''``).
        masklet_types: which JSONs to read: ``('manual',)`` (default: the human-annotated masklets),
            ``('manual', 'auto')`` adds SAM2's automatic ones (3x more, noisier).
        video_ids: optional text file of video ids, one per line (``#`` comments allowed), to use a subset or a
            fixed order; a listed id without its JSON is a bad record. Default: every JSON found.
        recursive: also find JSONs in sub-folders of ``ann_dir`` (the release's ``sav_000/`` ... shards);
            the video is then looked up in the same sub-folder of ``video_dir``. Ids in ``video_ids`` may then be
            ``<sub-folder>/<video_id>``.
        frame_stride: video frames per annotated frame (SA-V: 4, 24 fps video annotated at 6 fps).
        min_valid_frames: annotated frames where the object must be visible (non-empty) for the masklet to be
            used. Default 2 (a pair of distinct frames), 1 with ``allow_same_frame``.
        allow_same_frame: allow A == B (a still pair); off by default since a pair across time is the point.
        max_frame_gap: largest distance between A and B in annotated frames (``None``: any), to keep pairs
            similar enough to be re-segmentable from a caption.
        check_files: stat every mp4 at construction (a missing one is a bad record) instead of failing at load.
        validate_rle: check every RLE's run lengths at construction (``ovseg.datasets.referring.segmentation_rle``;
            about 1 ms per mask, hours for all of SA-V). Off: only form and size are checked there and each RLE is
            fully checked when it is loaded.
        sequential_decode: decode frames from the start of the video instead of seeking (exact for codecs whose
            seeking is not; slower). See :func:`read_video_frames`.
        progress_interval: log progress every this many JSON files while building the index.
        on_bad_record: ``'raise'`` or ``'skip'`` (:class:`RegionPairDataset`). Bad records: missing / invalid JSON
            or video (counted once per file), a masklet with no visible frame (``'empty mask'``) or fewer than
            ``min_valid_frames`` (``'too few valid frames'``) or no pair within ``max_frame_gap``.
        Other args as :class:`RegionPairDataset` / mmengine ``BaseDataset``. ``test_mode``: the first and last
        valid frames (see :func:`choose_frame_pair`).
    """

    SOURCE = 'sav'

    def __init__(self, data_root: str = 'data/sav', video_dir: str = '', ann_dir: str = '',
                 masklet_types: Sequence[str] = ('manual',), video_ids: str | None = None, recursive: bool = False,
                 frame_stride: int = SAV_FRAME_STRIDE, min_valid_frames: int | None = None,
                 allow_same_frame: bool = False, max_frame_gap: int | None = None, check_files: bool = False,
                 validate_rle: bool = False, sequential_decode: bool = False, progress_interval: int = 1000,
                 on_bad_record: str = 'raise', **kwargs: Any) -> None:
        if isinstance(masklet_types, str):
            masklet_types = (masklet_types,)
        if not masklet_types or any(t not in ('manual', 'auto') for t in masklet_types):
            raise ValueError(f"{type(self).__name__}: masklet_types must be a subset of ('manual', 'auto'), got "
                             f'{masklet_types!r}')
        if int(frame_stride) < 1:
            raise ValueError(f'{type(self).__name__}: frame_stride must be >= 1, got {frame_stride!r}')
        if max_frame_gap is not None and int(max_frame_gap) < (0 if allow_same_frame else 1):
            raise ValueError(f'{type(self).__name__}: max_frame_gap={max_frame_gap!r} allows no pair')
        self.masklet_types = tuple(masklet_types)
        self.recursive = bool(recursive)
        self.frame_stride = int(frame_stride)
        self.allow_same_frame = bool(allow_same_frame)
        self.min_valid_frames = int(min_valid_frames) if min_valid_frames is not None else (
            1 if allow_same_frame else 2)
        if self.min_valid_frames < (1 if allow_same_frame else 2):
            raise ValueError(f'{type(self).__name__}: min_valid_frames={min_valid_frames} cannot give a pair of '
                             'distinct frames (use allow_same_frame=True)')
        self.max_frame_gap = None if max_frame_gap is None else int(max_frame_gap)
        self.check_files = bool(check_files)
        self.validate_rle = bool(validate_rle)
        self.sequential_decode = bool(sequential_decode)
        self.progress_interval = max(1, int(progress_interval))
        super().__init__(on_bad_record=on_bad_record, data_root=data_root, ann_file=video_ids or '',
                         data_prefix=dict(video=video_dir, ann=ann_dir), **kwargs)

    def load_options(self) -> dict[str, Any]:
        return dict(super().load_options(), max_frame_gap=self.max_frame_gap, allow_same_frame=self.allow_same_frame,
                    sequential_decode=self.sequential_decode)

    # ------------------------------------------------------------------------------------------ index
    def _video_keys(self) -> list[tuple[str, str]]:
        """(key, masklet type) of every JSON to read; key = ``[<sub-folder>/]<video_id>``."""
        ann_dir = self.data_prefix['ann']
        if self.ann_file:
            return [(k, t) for k in _read_id_list(self.ann_file) for t in self.masklet_types]
        out = []
        for t in self.masklet_types:
            pattern = osp.join(ann_dir, '**' if self.recursive else '', f'*_{t}.json')
            for path in glob.glob(pattern, recursive=self.recursive):
                rel = osp.relpath(path, ann_dir)
                out.append((rel[:-len(f'_{t}.json')], t))
        order = {t: i for i, t in enumerate(self.masklet_types)}
        return sorted(out, key=lambda kt: (kt[0], order[kt[1]]))

    def load_data_list(self) -> list[dict]:
        keys = self._video_keys()
        if not keys:
            raise FileNotFoundError(f"{type(self).__name__}: no SA-V JSON (*_{'/'.join(self.masklet_types)}.json) "
                                    f"in {self.data_prefix['ann']}" + (' or below' if self.recursive else ''))
        data_list: list[dict] = []
        n_files = 0
        for n, (key, mtype) in enumerate(keys, start=1):
            try:
                records = self._index_json(key, mtype)
            except ReferringRecordError as e:
                self.bad.error(e)
                records = []
            else:
                n_files += 1
            data_list.extend(records)
            if n % self.progress_interval == 0 and n < len(keys):
                print_log(f'{type(self).__name__}: indexed {n}/{len(keys)} JSON files ({len(data_list)} masklets)',
                          logger='current')
        if not data_list:
            raise ReferringRecordError(f"{type(self).__name__} {self.data_prefix['ann']}: no usable masklet in "
                                       f'{len(keys)} JSON files (skipped: {self._skipped_summary()})')
        print_log(f"{type(self).__name__} {self.data_prefix['ann']}: {len(data_list)} masklets from {n_files} JSON "
                  f'files ({"/".join(self.masklet_types)}); skipped: {self._skipped_summary()}', logger='current')
        return data_list

    def _index_json(self, key: str, mtype: str) -> list[dict]:
        """Records of one JSON; file-level problems raise, masklet-level ones go through ``self.bad``."""
        from pycocotools import mask as mask_util
        json_path = osp.join(self.data_prefix['ann'], f'{key}_{mtype}.json')
        video_path = osp.join(self.data_prefix['video'], f'{key}.mp4')
        if not osp.isfile(json_path):
            raise ReferringRecordError(f'{json_path}: SA-V JSON not found (video id {key!r})', 'missing json')
        doc = read_sav_json(json_path)
        if self.check_files and not osp.isfile(video_path):
            raise ReferringRecordError(f'{json_path}: video file not found: {video_path}', 'missing video')
        masklet = doc['masklet']
        size = None
        if 'video_height' in doc and 'video_width' in doc:
            size = (int(doc['video_height']), int(doc['video_width']))
        n_obj = doc.get('masklet_num')
        n_obj = int(n_obj) if isinstance(n_obj, int) else max((len(f) for f in masklet), default=0)
        frame_count = doc.get('video_frame_count')
        n_ann = len(masklet)
        if isinstance(frame_count, int) and frame_count > 0:
            n_ann = min(n_ann, (frame_count + self.frame_stride - 1) // self.frame_stride)
        valid: list[list[int]] = [[] for _ in range(n_obj)]
        for k in range(n_ann):
            frame = masklet[k]
            if len(frame) != n_obj:
                raise ReferringRecordError(f'{json_path}: annotated frame {k} has {len(frame)} objects, expected '
                                           f'{n_obj} (masklet_num)', 'bad json')
            if not frame:
                continue
            rles = [_rle_bytes(r, size, f'{json_path}: annotated frame {k} object {o}') for o, r in enumerate(frame)]
            if size is None:
                size = tuple(rles[0]['size'])
            if self.validate_rle:
                for o, r in enumerate(rles):
                    try:
                        segmentation_rle(r, *size, f'{json_path}: annotated frame {k} object {o}')
                    except ReferringRecordError as e:
                        if e.reason != 'empty mask':
                            raise
            for o, area in enumerate(mask_util.area(rles)):
                if area > 0:
                    valid[o].append(k)
        ids = doc.get('masklet_id') if isinstance(doc.get('masklet_id'), list) else None
        name = osp.basename(json_path)
        video_id = str(doc.get('video_id', osp.basename(key)))
        records = []
        for o in range(n_obj):
            where = f'{json_path}: masklet {o}'
            frames = valid[o]
            if not frames:
                self.bad('empty mask', f'{where}: the object is empty in every annotated frame')
                continue
            if len(frames) < self.min_valid_frames:
                self.bad('too few valid frames', f'{where}: visible in {len(frames)} annotated frame(s) {frames}, '
                         f'min_valid_frames is {self.min_valid_frames}')
                continue
            if not frame_pair_candidates(frames, self.max_frame_gap, self.allow_same_frame):
                self.bad('no frame pair within max_frame_gap', f'{where}: no two valid frames of {frames} are within '
                         f'max_frame_gap={self.max_frame_gap} annotated frames')
                continue
            records.append(dict(source=self.SOURCE, record_id=f'{name} masklet {o}', json_path=json_path,
                                video_path=video_path, video_id=video_id, video_key=key, masklet_type=mtype,
                                object_index=o,
                                masklet_id=ids[o] if ids is not None and o < len(ids) else o, valid_frames=frames,
                                frame_stride=self.frame_stride, height=size[0] if size else None,
                                width=size[1] if size else None))
        return records

    def load_pair(self, idx: int, frame_a: int, frame_b: int, **kwargs: Any) -> dict:
        """The region-pair keys of record ``idx`` for the annotated frames ``frame_a`` / ``frame_b`` (no draw, no
        pipeline): what :class:`LoadRegionPair` returns when it draws that pair. ``kwargs`` as
        :func:`load_sav_pair`."""
        record = self.get_data_info(idx)
        out = load_sav_pair(record, frame_a, frame_b, **kwargs)
        record.update(out)
        return record


# ---------------------------------------------------------------------------------------------------- npz
def _npz_bytes(arrays: Mapping[str, np.ndarray]) -> bytes:
    """``np.savez_compressed``'s bytes with fixed member timestamps (equal arrays give equal files)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, 'w', compression=zipfile.ZIP_DEFLATED) as zf:
        for name, arr in arrays.items():
            info = zipfile.ZipInfo(f'{name}.npy', date_time=_ZIP_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            with zf.open(info, 'w', force_zip64=True) as f:
                np.lib.format.write_array(f, np.asanyarray(arr), allow_pickle=False)
    return buf.getvalue()


def write_frame_pair_npz(path: str | os.PathLike, frames: np.ndarray | Sequence[np.ndarray],
                         masks: np.ndarray | Sequence[np.ndarray], frame_indices: Sequence[int], video_id: str,
                         object_id: int, expression: str | None = None, category_name: str | None = None,
                         sync_dir: bool = False) -> Path:
    """Write one frame pair in the npz format of this module (atomically); returns the path.

    ``frames``: two uint8 H×W×3 RGB frames (A, B), ``masks``: two non-empty H×W masks. Raises ``ValueError`` for
    anything the reader would refuse. ``sync_dir``: fsync the folder too (off: converters write thousands).
    """
    frames = np.stack([np.asarray(f) for f in frames]) if not isinstance(frames, np.ndarray) else frames
    masks = np.stack([np.asarray(m) for m in masks]) if not isinstance(masks, np.ndarray) else masks
    arrays = dict(frames=frames, masks=masks.astype(bool), frame_indices=np.asarray(frame_indices, dtype=np.int64),
                  video_id=np.array(str(video_id)), object_id=np.array(int(object_id), dtype=np.int64))
    if expression is not None:
        arrays['expression'] = np.array(str(expression))
    if category_name is not None:
        arrays['category_name'] = np.array(str(category_name))
    _check_npz_arrays(arrays, str(path), ValueError)
    return atomic_write_bytes(path, _npz_bytes(arrays), sync_dir=sync_dir)


def _check_npz_arrays(d: Mapping[str, np.ndarray], where: str, error: type[Exception]) -> None:
    def fail(msg: str) -> None:
        raise error(f'{where}: {msg}', 'bad npz') if error is ReferringRecordError else error(f'{where}: {msg}')
    missing = [k for k in NPZ_REQUIRED_KEYS if k not in d]
    if missing:
        fail(f'frame-pair npz lacks {missing} (needs {list(NPZ_REQUIRED_KEYS)})')
    frames, masks = d['frames'], d['masks']
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[0] != 2 or frames.shape[3] != 3:
        fail(f'frames must be uint8 (2, H, W, 3), got {frames.dtype} {frames.shape}')
    if masks.dtype != bool or masks.shape != frames.shape[:3]:
        fail(f'masks must be bool {frames.shape[:3]} (the frames\' size), got {masks.dtype} {masks.shape}')
    if d['frame_indices'].shape != (2,) or not np.issubdtype(d['frame_indices'].dtype, np.integer):
        fail(f"frame_indices must be 2 integers, got {d['frame_indices'].dtype} {d['frame_indices'].shape}")
    for k in ('video_id', *NPZ_OPTIONAL_KEYS):
        if k in d and (d[k].shape != () or d[k].dtype.kind != 'U'):
            fail(f'{k} must be a 0-d str array, got {d[k].dtype} {d[k].shape}')
    if d['object_id'].shape != () or not np.issubdtype(d['object_id'].dtype, np.integer):
        fail(f"object_id must be a 0-d integer, got {d['object_id'].dtype} {d['object_id'].shape}")
    for i in range(2):
        if not masks[i].any():
            raise (ReferringRecordError(f'{where}: mask {i} is empty', 'empty mask')
                   if error is ReferringRecordError else error(f'{where}: mask {i} is empty'))


def read_frame_pair_npz(path: str | os.PathLike, where: str | None = None) -> dict[str, Any]:
    """Read and check one frame-pair npz: ``frames``, ``masks``, ``frame_indices`` (arrays), ``video_id`` (str),
    ``object_id`` (int), ``expression`` / ``category_name`` (str or None).

    A missing, unreadable or malformed file, or an empty mask (reason ``'empty mask'``), raises
    :class:`ReferringRecordError` naming ``where`` (default: the path).
    """
    path = os.fspath(path)
    where = where or path
    if not osp.isfile(path):
        raise ReferringRecordError(f'{where}: frame-pair npz not found: {path}', 'missing npz')
    try:
        with np.load(path, allow_pickle=False) as z:
            d = {k: z[k] for k in z.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        raise ReferringRecordError(f'{where}: cannot read frame-pair npz {path} ({e})', 'unreadable npz') from None
    _check_npz_arrays(d, where, ReferringRecordError)
    return dict(frames=d['frames'], masks=d['masks'], frame_indices=d['frame_indices'].astype(np.int64),
                video_id=str(d['video_id']), object_id=int(d['object_id']),
                **{k: (str(d[k]) if k in d else None) for k in NPZ_OPTIONAL_KEYS})


@register_region_loader('sav_npz', 'toy_pairs')
def _load_npz(record: dict) -> dict:
    path = record['npz_path']
    d = read_frame_pair_npz(path, f"{record['record_id']} ({path})")
    a, b = 0, 1
    if record.get('random_order') and not record.get('deterministic') and np.random.rand() < 0.5:
        a, b = 1, 0
    fi = d['frame_indices']
    return dict(img=d['frames'][a], img_path=f'{path}#frame={int(fi[a])}', region_mask=d['masks'][a],
                img2=d['frames'][b], img2_path=f'{path}#frame={int(fi[b])}', region_mask2=d['masks'][b],
                frame_indices=(int(fi[a]), int(fi[b])), expression=d['expression'],
                category_name=d['category_name'], video_id=d['video_id'], object_id=d['object_id'],
                annotation_path=path)


def _list_npz(folder: str, file_list: str | None) -> Iterable[str]:
    if file_list:
        return [osp.join(folder, p) for p in _read_id_list(file_list)]
    return sorted(glob.glob(osp.join(folder, '**', '*.npz'), recursive=True))


@DATASETS.register_module()
class SAVFramePairNpzDataset(RegionPairDataset):
    """Frame pairs stored as npz (this module's format): one sample per file.

    Args:
        data_root: the folder of the pairs (``npz_dir`` and ``file_list`` are relative to it).
        npz_dir: sub-folder holding the ``.npz`` files, searched recursively (default: ``data_root`` itself).
        file_list: optional text file of npz paths relative to ``npz_dir``, one per line, to use a subset or a
            fixed order without walking the folder. Default: every ``*.npz`` below ``npz_dir``, sorted.
        check_files: open and check every npz at construction (a missing, unreadable or malformed file or an empty
            mask is then a bad record); off by default since that reads every pair once. Without it a bad file
            raises at load (an empty mask under ``on_bad_record='skip'`` makes mmengine draw another sample).
        random_order: in training, swap A and B with probability 1/2 (``np.random``, seeded per sample) so the
            caption view is not always the earlier frame; off by default and in ``test_mode``.
        progress_interval: log progress every this many files when ``check_files`` reads them.
        on_bad_record: ``'raise'`` or ``'skip'`` (:class:`RegionPairDataset`).
        Other args as :class:`RegionPairDataset` / mmengine ``BaseDataset``.
    """

    SOURCE = 'sav_npz'

    def __init__(self, data_root: str = 'data/sav_frame_pairs', npz_dir: str = '', file_list: str | None = None,
                 check_files: bool = False, random_order: bool = False, progress_interval: int = 10000,
                 on_bad_record: str = 'raise', **kwargs: Any) -> None:
        self.check_files = bool(check_files)
        self.random_order = bool(random_order)
        self.progress_interval = max(1, int(progress_interval))
        super().__init__(on_bad_record=on_bad_record, data_root=data_root, ann_file=file_list or '',
                         data_prefix=dict(npz=npz_dir), **kwargs)

    def load_options(self) -> dict[str, Any]:
        return dict(super().load_options(), random_order=self.random_order)

    def load_data_list(self) -> list[dict]:
        folder = self.data_prefix['npz']
        paths = list(_list_npz(folder, self.ann_file or None))
        data_list = []
        for n, path in enumerate(paths, start=1):
            rel = osp.relpath(path, folder)
            if self.check_files:
                try:
                    read_frame_pair_npz(path, f'{rel} ({path})')
                except ReferringRecordError as e:
                    self.bad.error(e)
                    continue
                if n % self.progress_interval == 0 and n < len(paths):
                    print_log(f'{type(self).__name__}: checked {n}/{len(paths)} npz files', logger='current')
            data_list.append(dict(source=self.SOURCE, record_id=rel, npz_path=path))
        if not data_list:
            raise ReferringRecordError(f'{type(self).__name__}: no usable frame-pair npz in {folder} (skipped: '
                                       f'{self._skipped_summary()})')
        print_log(f'{type(self).__name__} {folder}: {len(data_list)} frame pairs; skipped: {self._skipped_summary()}',
                  logger='current')
        return data_list
