"""Loading transforms: images (RGB uint8), panoptic PNGs (segment ids) and semantic label maps.

Errors name the file and the offending value because a broken annotation is otherwise discovered as a
shape mismatch or a silent VOID deep inside a training step.
"""
from __future__ import annotations

import os

import cv2
import numpy as np
from mmcv.transforms import BaseTransform
from mmengine.logging import print_log
from PIL import Image

from ovseg.registry import TRANSFORMS
from ovseg.structures.panoptic_format import IGNORE_INDEX, read_panoptic_png


def _imread(path: str, flags: int, who: str, key: str) -> np.ndarray:
    img = cv2.imread(path, flags)
    if img is None:
        if not os.path.isfile(path):
            raise FileNotFoundError(f"{who}: cannot read {key} '{path}': no such file")
        raise ValueError(f"{who}: cannot decode {key} '{path}' ({os.path.getsize(path)} bytes: corrupt, truncated "
                         'or not an image)')
    return img


def _file_is_complete(path: str) -> bool:
    """Whether a JPEG ends with its EOI marker / a PNG with its IEND chunk (other formats: assumed complete).

    OpenCV decodes a truncated JPEG with a warning only, filling the missing rows with grey.
    """
    with open(path, 'rb') as f:
        head = f.read(8)
        f.seek(max(0, os.path.getsize(path) - 64))
        tail = f.read().rstrip(b'\x00')  # some writers pad with zeros after the end marker
    if head.startswith(b'\xff\xd8'):
        return tail.endswith(b'\xff\xd9')
    if head.startswith(b'\x89PNG'):
        return tail.endswith(b'IEND\xaeB`\x82')
    return True


def decode_image(path: str, who: str = 'LoadImage') -> np.ndarray:
    """BGR uint8 H×W×3 from ``path``; a missing, undecodable or truncated file is an error naming it."""
    img = _imread(path, cv2.IMREAD_COLOR, who, 'image')
    if not _file_is_complete(path):
        try:  # a few encoders write valid files without the final marker: let a strict decoder decide
            with Image.open(path) as im:
                im.load()
        except (OSError, SyntaxError) as exc:
            raise ValueError(f"{who}: image '{path}' is truncated or corrupt ({exc}); OpenCV would decode it "
                             'with missing rows filled in grey') from None
    return img


def _check_same_size(results: dict, label: np.ndarray, who: str, path: str | None = None) -> None:
    """Label maps must match the image they annotate; compare with the loaded image's original size."""
    ori = results.get('ori_shape')
    if ori is not None and tuple(label.shape[:2]) != tuple(ori[:2]):
        raise ValueError(f"{who}: annotation '{path or results.get('seg_map_path')}' is "
                         f"{label.shape[1]}x{label.shape[0]} "
                         f"(WxH) but image '{results.get('img_path')}' is {ori[1]}x{ori[0]}")


@TRANSFORMS.register_module()
class LoadImage(BaseTransform):
    """Read ``img_path`` as an RGB uint8 H×W×3 array; set ``img_shape``/``ori_shape`` (h, w)."""

    def __init__(self, to_float32: bool = False) -> None:
        self.to_float32 = to_float32

    def transform(self, results: dict) -> dict:
        path = results.get('img_path')
        if path is None:
            raise KeyError("LoadImage: results has no 'img_path'")
        img = decode_image(str(path))
        img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
        if self.to_float32:
            img = img.astype(np.float32)
        results['img'] = img
        results['img_shape'] = img.shape[:2]
        results['ori_shape'] = img.shape[:2]
        results.setdefault('scale_factor', (1.0, 1.0))
        results.setdefault('flip', False)
        results.setdefault('flip_direction', None)
        return results

    def __repr__(self) -> str:
        return f'{type(self).__name__}(to_float32={self.to_float32})'


_absent_segments = {'images': 0, 'segments': 0}


def _warn_absent_segments(path: str, img_id, absent: list[int]) -> None:
    """Segments listed in the JSON but missing from the PNG: counted per process, warned (then sampled)."""
    _absent_segments['images'] += 1
    _absent_segments['segments'] += len(absent)
    n = _absent_segments['images']
    if n <= 5 or n % 100 == 0:
        print_log(f"LoadPanopticAnnotations: '{path}' (image {img_id!r}) lacks {len(absent)} segment(s) listed in "
                  f'its segments_info (ids {absent[:10]}); they give no target. So far in this process: '
                  f"{_absent_segments['segments']} segments in {n} images", logger='current', level=30)


@TRANSFORMS.register_module()
class LoadPanopticAnnotations(BaseTransform):
    """Read the panoptic PNG at ``seg_map_path`` into ``gt_pan_id`` (int64, 0 = VOID) and ``gt_seg_map``.

    ``gt_seg_map`` marks VOID with the sample's ``ignore_index`` (the dataset's, 255 by default). Decoding is
    :func:`ovseg.structures.panoptic_format.read_panoptic_png` (8-bit RGB only).

    Args:
        with_seg_map: also derive ``gt_seg_map`` (contiguous class per pixel, 255 for VOID).
        unknown_ids: what to do with PNG ids absent from ``segments_info``: ``None`` (default) follows the
            sample's ``unlisted_segments`` set by :class:`CocoPanopticDataset` (``'no_target'`` → VOID,
            ``'error'`` or absent → raise), so the dataset that deleted segments on purpose says so once;
            ``'raise'`` (catches mismatched PNG/JSON pairs) or ``'void'`` (treat as VOID: no training target,
            as FC-CLIP's mapper, which builds instances from ``segments_info`` only) override the sample.
            Never evaluate with VOID-ed ids: panopticapi does not treat a GT id absent from the JSON as VOID,
            so evaluate on the full JSON (see :class:`CocoPanopticDataset`, ``unlisted_segments``).
    """

    # the dataset's ``unlisted_segments`` → this transform's ``unknown_ids``
    _POLICY = {'error': 'raise', 'no_target': 'void'}

    def __init__(self, with_seg_map: bool = True, unknown_ids: str | None = None) -> None:
        if unknown_ids not in (None, 'raise', 'void'):
            raise ValueError(f"unknown_ids must be None, 'raise' or 'void', got {unknown_ids!r}")
        self.with_seg_map = with_seg_map
        self.unknown_ids = unknown_ids

    def transform(self, results: dict) -> dict:
        path = results.get('seg_map_path')
        if path is None:
            raise KeyError("LoadPanopticAnnotations: results has no 'seg_map_path'")
        try:  # uint32 ids; errors name the file (16-bit, grayscale, missing)
            pan = read_panoptic_png(str(path))
        except (FileNotFoundError, ValueError) as e:
            raise type(e)(f'LoadPanopticAnnotations: {e}') from e
        _check_same_size(results, pan, 'LoadPanopticAnnotations')
        segments = results.get('segments_info', [])
        seg_cat = {int(s['id']): int(s['category_id']) for s in segments}
        # One np.unique pass serves the id check, the VOID remap, the int64 map and the semantic map.
        ids, inverse = np.unique(pan, return_inverse=True)
        ids = ids.astype(np.int64)  # gt_pan_id becomes a LongTensor
        inverse = inverse.reshape(pan.shape)
        unknown = [int(i) for i in ids if i != 0 and int(i) not in seg_cat]
        if unknown:
            if self._policy(results) == 'raise':
                raise ValueError(f"LoadPanopticAnnotations: '{path}' contains segment id(s) {unknown[:10]} "
                                 f"absent from segments_info of image {results.get('img_id')!r} (set "
                                 "unlisted_segments='no_target' on the dataset if segments were deleted on "
                                 'purpose)')
            ids = np.where(np.isin(ids, unknown), 0, ids)
        present = set(ids.tolist())
        absent = [sid for sid in seg_cat if sid not in present]
        if absent:
            _warn_absent_segments(path, results.get('img_id'), absent)
        results['gt_pan_id'] = ids[inverse]
        if self.with_seg_map:
            ignore = int(results.get('ignore_index', IGNORE_INDEX))
            lut = np.array([seg_cat.get(int(i), ignore) for i in ids], dtype=np.int64)
            results['gt_seg_map'] = lut[inverse]
        return results

    def _policy(self, results: dict) -> str:
        """``'raise'`` or ``'void'``: this transform's ``unknown_ids``, else the sample's ``unlisted_segments``."""
        if self.unknown_ids is not None:
            return self.unknown_ids
        unlisted = results.get('unlisted_segments', 'error')
        if unlisted not in self._POLICY:
            raise ValueError(f"LoadPanopticAnnotations: sample {results.get('img_id')!r} has unlisted_segments="
                             f"{unlisted!r}; expected one of {tuple(self._POLICY)}")
        return self._POLICY[unlisted]

    def __repr__(self) -> str:
        return f'{type(self).__name__}(with_seg_map={self.with_seg_map}, unknown_ids={self.unknown_ids!r})'


@TRANSFORMS.register_module()
class LoadSemSegAnnotations(BaseTransform):
    """Read a label map (PNG/TIFF, 8 or 16 bit) into ``gt_seg_map`` (int64; the dataset's ignore value kept).

    The ignore value is the dataset's (``results['ignore_index']``, set by :class:`SemSegDataset` /
    :class:`CocoPanopticDataset` from their ``metainfo``) unless ``ignore_index`` is given; 255 when neither
    says. It is never remapped: in A-847 / PC-459 the 16-bit TIFFs use 65535 and 255 is a class.
    ``reduce_zero_label`` (None = take ``results['reduce_zero_label']``) maps 0 → ignore and v → v−1, exactly
    as mmseg. Values ≥ ``num_classes`` other than the ignore value are rejected when ``num_classes`` is given,
    since they would index past the classifier.

    Args:
        path_key: results key holding the file to read: ``'seg_map_path'`` for semantic datasets,
            ``'sem_seg_map_path'`` for the separate semantic GT of a panoptic dataset (ADE20K-150's
            ``annotations_detectron2``, as FC-CLIP's ``register_ade20k_panoptic.py`` registers it).
    """

    def __init__(self, reduce_zero_label: bool | None = None, num_classes: int | None = None,
                 ignore_index: int | None = None, path_key: str = 'seg_map_path') -> None:
        self.reduce_zero_label = reduce_zero_label
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.path_key = path_key

    def transform(self, results: dict) -> dict:
        path = results.get(self.path_key)
        if path is None:
            hint = (" (set data_prefix['sem_seg'] on the panoptic dataset)"
                    if self.path_key == 'sem_seg_map_path' else '')
            raise KeyError(f"LoadSemSegAnnotations: results has no '{self.path_key}'{hint}")
        label = _imread(str(path), cv2.IMREAD_UNCHANGED, 'LoadSemSegAnnotations', 'label map')
        if label.ndim == 3:  # cv2 expands palette PNGs (raw VOC) to colours; PIL keeps the indices
            with Image.open(path) as im:
                if im.mode == 'P':
                    label = np.asarray(im)
        if label.ndim == 3:
            raise ValueError(f"LoadSemSegAnnotations: label map '{path}' has {label.shape[2]} channels; "
                             'expected a single-channel map of class indices')
        label = label.astype(np.int64)
        _check_same_size(results, label, 'LoadSemSegAnnotations', path)
        ignore = self.ignore_index if self.ignore_index is not None else results.get('ignore_index',
                                                                                    IGNORE_INDEX)
        ignore = int(ignore)
        reduce = self.reduce_zero_label
        if reduce is None:
            reduce = bool(results.get('reduce_zero_label', False))
        if reduce:
            unlabelled = (label == 0) | (label == ignore)
            label = label - 1
            label[unlabelled] = ignore
        if self.num_classes is not None:
            bad = np.unique(label[(label >= self.num_classes) & (label != ignore)])
            if bad.size:
                raise ValueError(f"LoadSemSegAnnotations: '{path}' has label(s) {bad[:10].tolist()} outside "
                                 f'0..{self.num_classes - 1} and != the ignore value {ignore}')
        results['gt_seg_map'] = label
        results['reduce_zero_label'] = reduce
        results['ignore_index'] = ignore
        return results

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(reduce_zero_label={self.reduce_zero_label}, '
                f'num_classes={self.num_classes}, ignore_index={self.ignore_index}, '
                f'path_key={self.path_key!r})')
