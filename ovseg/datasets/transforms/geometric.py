"""Geometric transforms: LSJ (RandomResizeScale + FixedSizeCrop), horizontal flip, test-time resize.

They follow detectron2's ``ResizeScale``/``FixedSizeCrop``/``ResizeShortestEdge`` arithmetic so FC-CLIP
recipes transfer unchanged. Label maps (``gt_pan_id``, ``gt_seg_map``) always use nearest interpolation
with pixel-centre sampling (as PIL's NEAREST, which detectron2 uses), so image and labels stay aligned.
Randomness comes from ``np.random`` like mmcv/detectron2 (seeded per dataloader worker by mmengine).
"""
from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
from mmcv.transforms import BaseTransform

from ovseg.registry import TRANSFORMS
from ovseg.structures.panoptic_format import IGNORE_INDEX, VOID

LABEL_KEYS = ('gt_pan_id', 'gt_seg_map')


def resize_nearest(label: np.ndarray, size_hw: tuple[int, int]) -> np.ndarray:
    """Nearest resize with centre sampling ``src = floor((dst + 0.5) * in / out)``; any dtype."""
    h, w = label.shape[:2]
    out_h, out_w = size_hw
    rows = np.minimum(((np.arange(out_h) + 0.5) * (h / out_h)).astype(np.int64), h - 1)
    cols = np.minimum(((np.arange(out_w) + 0.5) * (w / out_w)).astype(np.int64), w - 1)
    return label[rows[:, None], cols[None, :]]


def resize_image(img: np.ndarray, size_hw: tuple[int, int], antialias: bool = True) -> np.ndarray:
    """Bilinear resize; area averaging when shrinking (``antialias``), like PIL's BILINEAR in detectron2."""
    out_h, out_w = size_hw
    if (out_h, out_w) == img.shape[:2]:
        return img.copy()
    shrink = out_h < img.shape[0] and out_w < img.shape[1]
    interp = cv2.INTER_AREA if (antialias and shrink) else cv2.INTER_LINEAR
    return cv2.resize(img, (out_w, out_h), interpolation=interp)


def _update_scale(results: dict, old_hw: Sequence[int], new_hw: Sequence[int]) -> None:
    w_scale, h_scale = new_hw[1] / old_hw[1], new_hw[0] / old_hw[0]
    prev_w, prev_h = results.get('scale_factor', (1.0, 1.0))
    results['scale_factor'] = (prev_w * w_scale, prev_h * h_scale)
    results['img_shape'] = tuple(int(v) for v in new_hw)


def _apply_resize(results: dict, size_hw: tuple[int, int], keys: Sequence[str], antialias: bool) -> None:
    old_hw = results['img'].shape[:2]
    for key in keys:
        if key not in results:
            continue
        if key == 'img':
            results['img'] = resize_image(results['img'], size_hw, antialias)
        else:
            results[key] = resize_nearest(results[key], size_hw)
    _update_scale(results, old_hw, size_hw)


@TRANSFORMS.register_module()
class RandomResizeScale(BaseTransform):
    """Large-scale jitter resize (detectron2 ``ResizeScale``).

    Draws ``r ~ U(min_scale, max_scale)`` and resizes, keeping the aspect ratio, to the largest size that
    fits inside ``target_size * r``: ``s = min(r*Ht/h, r*Wt/w)``, ``out = round((h, w) * s)``.
    Resizes ``img`` and the label maps (nearest).
    """

    def __init__(self, min_scale: float = 0.1, max_scale: float = 2.0,
                 target_size: Sequence[int] | int = (1024, 1024), antialias: bool = True) -> None:
        if not 0 < min_scale <= max_scale:
            raise ValueError(f'need 0 < min_scale <= max_scale, got {min_scale}, {max_scale}')
        self.min_scale, self.max_scale = float(min_scale), float(max_scale)
        self.target_size = (target_size, target_size) if isinstance(target_size, int) else tuple(target_size)
        self.antialias = antialias

    def output_size(self, hw: Sequence[int], scale: float) -> tuple[int, int]:
        """Size for an input of ``hw`` at jitter factor ``scale`` (exposed for tests and analysis)."""
        s = min(self.target_size[0] * scale / hw[0], self.target_size[1] * scale / hw[1])
        return max(1, int(round(hw[0] * s))), max(1, int(round(hw[1] * s)))

    def transform(self, results: dict) -> dict:
        scale = np.random.uniform(self.min_scale, self.max_scale)
        size = self.output_size(results['img'].shape[:2], scale)
        _apply_resize(results, size, ('img',) + LABEL_KEYS, self.antialias)
        return results

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(min_scale={self.min_scale}, max_scale={self.max_scale}, '
                f'target_size={self.target_size})')


@TRANSFORMS.register_module()
class FixedSizeCrop(BaseTransform):
    """Random crop to ``crop_size`` when larger, then pad bottom/right to exactly ``crop_size``.

    As detectron2's ``FixedSizeCrop``, one uniform draw positions the crop on both axes
    (``offset = round(max_offset * u)``). An image smaller than the crop (LSJ scale < 1) is not cropped,
    only padded: image with ``img_pad_value`` (128), ``gt_pan_id`` with 0 (VOID, so padding never becomes a
    target) and ``gt_seg_map`` with ``seg_pad_value`` (default: the sample's ``ignore_index``, 255 unless the
    dataset says otherwise; ignored by the loss and metrics). ``pad=False`` skips padding.
    """

    def __init__(self, crop_size: Sequence[int] | int = (1024, 1024), pad: bool = True,
                 img_pad_value: float = 128, seg_pad_value: int | None = None,
                 pan_pad_value: int = VOID) -> None:
        self.crop_size = (crop_size, crop_size) if isinstance(crop_size, int) else tuple(crop_size)
        self.pad = pad
        self.img_pad_value = img_pad_value
        self.seg_pad_value = seg_pad_value
        self.pan_pad_value = pan_pad_value

    def _pad_value(self, key: str, results: dict) -> float:
        if key == 'gt_seg_map':
            if self.seg_pad_value is not None:
                return self.seg_pad_value
            return results.get('ignore_index', IGNORE_INDEX)
        return {'img': self.img_pad_value, 'gt_pan_id': self.pan_pad_value}[key]

    def transform(self, results: dict) -> dict:
        h, w = results['img'].shape[:2]
        ch, cw = self.crop_size
        max_off = np.maximum(np.array([h - ch, w - cw]), 0)
        off_y, off_x = np.round(max_off * np.random.uniform(0.0, 1.0)).astype(int)
        out_hw = (min(h, ch), min(w, cw))
        for key in ('img',) + LABEL_KEYS:
            if key not in results:
                continue
            arr = results[key][off_y:off_y + out_hw[0], off_x:off_x + out_hw[1]]
            if self.pad and arr.shape[:2] != self.crop_size:
                padded = np.full(self.crop_size + arr.shape[2:], self._pad_value(key, results),
                                 dtype=arr.dtype)
                padded[:arr.shape[0], :arr.shape[1]] = arr
                arr = padded
            results[key] = np.ascontiguousarray(arr)
        results['img_shape'] = results['img'].shape[:2]
        results['crop_bbox'] = (int(off_x), int(off_y), int(off_x + out_hw[1]), int(off_y + out_hw[0]))
        return results

    def __repr__(self) -> str:
        return f'{type(self).__name__}(crop_size={self.crop_size}, pad={self.pad})'


@TRANSFORMS.register_module()
class RandomFlip(BaseTransform):
    """Horizontal flip with probability ``prob`` of the image and every label map present."""

    def __init__(self, prob: float = 0.5, direction: str = 'horizontal') -> None:
        if direction != 'horizontal':
            raise ValueError(f"only 'horizontal' flips are supported (got {direction!r}): vertical flips "
                             'change the semantics of scene layouts')
        if not 0.0 <= prob <= 1.0:
            raise ValueError(f'prob must lie in [0, 1], got {prob}')
        self.prob = prob
        self.direction = direction

    def transform(self, results: dict) -> dict:
        flip = bool(np.random.rand() < self.prob)
        if flip:
            for key in ('img',) + LABEL_KEYS:
                if key in results:
                    results[key] = np.ascontiguousarray(results[key][:, ::-1])
        results['flip'] = flip or bool(results.get('flip', False))
        results['flip_direction'] = self.direction if results['flip'] else None
        return results

    def __repr__(self) -> str:
        return f'{type(self).__name__}(prob={self.prob}, direction={self.direction!r})'


@TRANSFORMS.register_module()
class ResizeShortestEdge(BaseTransform):
    """Resize so the short side is ``short_edge_length`` and the long side at most ``max_size``.

    Same arithmetic as detectron2 (``int(x + 0.5)`` rounding). A sequence of lengths is sampled from
    (``sample_style='choice'``) or as a ``'range'``, for multi-scale training. Only ``keys`` are resized
    (default the image: test-time ground truth stays at ``ori_shape`` for evaluation).
    """

    def __init__(self, short_edge_length: int | Sequence[int] = 800, max_size: int = 1333,
                 sample_style: str = 'choice', keys: Sequence[str] = ('img',),
                 antialias: bool = True) -> None:
        lengths = (short_edge_length,) if isinstance(short_edge_length, int) else tuple(short_edge_length)
        if sample_style not in ('choice', 'range'):
            raise ValueError(f"sample_style must be 'choice' or 'range', got {sample_style!r}")
        if sample_style == 'range' and len(lengths) != 2:
            raise ValueError(f"sample_style='range' needs (min, max), got {short_edge_length}")
        if 'img' not in keys:
            raise ValueError("ResizeShortestEdge keys must include 'img'")
        self.lengths = lengths
        self.max_size = max_size
        self.sample_style = sample_style
        self.keys = tuple(keys)
        self.antialias = antialias

    @staticmethod
    def get_output_shape(h: int, w: int, short: int, max_size: int) -> tuple[int, int]:
        scale = short / min(h, w)
        new_h, new_w = (short, scale * w) if h < w else (scale * h, short)
        if max(new_h, new_w) > max_size:
            s = max_size / max(new_h, new_w)
            new_h, new_w = new_h * s, new_w * s
        return int(new_h + 0.5), int(new_w + 0.5)

    def transform(self, results: dict) -> dict:
        if self.sample_style == 'range':
            short = int(np.random.randint(self.lengths[0], self.lengths[1] + 1))
        else:
            short = int(np.random.choice(self.lengths)) if len(self.lengths) > 1 else self.lengths[0]
        h, w = results['img'].shape[:2]
        _apply_resize(results, self.get_output_shape(h, w, short, self.max_size), self.keys, self.antialias)
        return results

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(short_edge_length={self.lengths}, max_size={self.max_size}, '
                f'keys={self.keys})')
