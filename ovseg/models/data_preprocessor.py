"""``SegDataPreprocessor``: device transfer, normalisation, padding and batching for segmentors.

Images arrive as uint8 RGB 3×H×W tensors (moved to the device before the float cast, which is 4× less
traffic). They are normalised with CLIP's mean/std on the 0-255 scale, padded bottom/right with 0 (after
normalisation, as detectron2's ``ImageList``) to a common size divisible by ``size_divisor`` and stacked.
In training the ground truth is padded to the same batch shape: instance masks with False, semantic maps
with 255 and panoptic ids with 0 (VOID), so padding never creates targets. At test time ground truth stays
at ``ori_shape`` for evaluation and is left untouched.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from mmengine.model import BaseDataPreprocessor
from mmengine.structures import PixelData

from ovseg.registry import MODELS

CLIP_MEAN = (122.7709383, 116.7460125, 104.09373615)
CLIP_STD = (68.5005327, 66.6321579, 70.32316305)


def _ceil_to(value: int, divisor: int) -> int:
    return -(-value // divisor) * divisor if divisor > 1 else value


def _pad_2d(t: torch.Tensor, hw: tuple[int, int], value: float) -> torch.Tensor:
    """Pad the last two dims of ``t`` bottom/right to ``hw`` (works for bool tensors too)."""
    h, w = t.shape[-2:]
    if (h, w) == tuple(hw):
        return t
    if h > hw[0] or w > hw[1]:
        raise ValueError(f'cannot pad a {h}x{w} map to the smaller batch shape {hw[0]}x{hw[1]}')
    out = t.new_full(t.shape[:-2] + tuple(hw), value)
    out[..., :h, :w] = t
    return out


def _pad_pixel_data(pixel_data: PixelData, hw: tuple[int, int], value: float) -> PixelData:
    """PixelData fixes its H×W on first assignment, so padding builds a new one (metainfo kept)."""
    fields = {k: _pad_2d(v, hw, value) for k, v in pixel_data.items()}
    return PixelData(metainfo=pixel_data.metainfo, **fields)


@MODELS.register_module()
class SegDataPreprocessor(BaseDataPreprocessor):
    """Normalise, pad and stack images; pad training ground truth to the batch shape.

    Args:
        mean / std: per-channel statistics in the input's 0-255 RGB scale (default: CLIP's);
            ``None`` disables normalisation.
        size_divisor: pad height and width up to a multiple of this (32: the coarsest backbone stride).
        pad_value: image padding value, applied after normalisation.
        seg_pad_value: ``gt_sem_seg`` padding (255 = ignore).
        pan_pad_value: ``gt_panoptic_seg`` padding during training (0 = VOID).
        non_blocking: passed to the device copy.
    """

    def __init__(self, mean: Sequence[float] | None = CLIP_MEAN, std: Sequence[float] | None = CLIP_STD,
                 size_divisor: int = 32, pad_value: float = 0.0, seg_pad_value: int = 255,
                 pan_pad_value: int = 0, non_blocking: bool = False) -> None:
        super().__init__(non_blocking=non_blocking)
        if (mean is None) != (std is None):
            raise ValueError('mean and std must both be given or both be None')
        self._enable_normalize = mean is not None
        if mean is not None:
            if len(mean) != 3 or len(std) != 3:
                raise ValueError(f'mean/std need 3 values (RGB), got {mean} / {std}')
            self.register_buffer('mean', torch.tensor(mean, dtype=torch.float32).view(-1, 1, 1), False)
            self.register_buffer('std', torch.tensor(std, dtype=torch.float32).view(-1, 1, 1), False)
        if size_divisor < 1:
            raise ValueError(f'size_divisor must be >= 1, got {size_divisor}')
        self.size_divisor = int(size_divisor)
        self.pad_value = float(pad_value)
        self.seg_pad_value = int(seg_pad_value)
        self.pan_pad_value = int(pan_pad_value)

    def forward(self, data: dict, training: bool = False) -> dict:
        data = self.cast_data(data)
        inputs = data['inputs']
        if isinstance(inputs, torch.Tensor):
            if inputs.dim() != 4:
                raise ValueError(f'batched inputs must be N×C×H×W, got shape {tuple(inputs.shape)}')
            inputs = list(inputs)
        if not inputs:
            raise ValueError('SegDataPreprocessor received an empty batch')
        for img in inputs:
            if img.dim() != 3 or img.shape[0] != 3:
                raise ValueError(f'each input must be a 3×H×W RGB tensor, got shape {tuple(img.shape)}')
        batch_h = _ceil_to(max(i.shape[1] for i in inputs), self.size_divisor)
        batch_w = _ceil_to(max(i.shape[2] for i in inputs), self.size_divisor)
        if len({tuple(i.shape) for i in inputs}) == 1:  # one size (training crops): normalise the batch at once
            images = self._normalize(torch.stack(list(inputs)).float())
            batch = F.pad(images, (0, batch_w - images.shape[3], 0, batch_h - images.shape[2]), value=self.pad_value)
        else:
            images = [self._normalize(i.float()) for i in inputs]
            batch = torch.stack([
                F.pad(i, (0, batch_w - i.shape[2], 0, batch_h - i.shape[1]), value=self.pad_value) for i in images])

        data_samples = data.get('data_samples')
        if data_samples is not None:
            for img, sample in zip(inputs, data_samples):
                h, w = img.shape[1:]
                sample.set_metainfo(dict(
                    batch_input_shape=(batch_h, batch_w),
                    pad_shape=(_ceil_to(h, self.size_divisor), _ceil_to(w, self.size_divisor))))
                if training:
                    self._pad_gt(sample, (batch_h, batch_w))
        return dict(inputs=batch, data_samples=data_samples)

    def _normalize(self, img: torch.Tensor) -> torch.Tensor:
        return (img - self.mean) / self.std if self._enable_normalize else img

    def _pad_gt(self, sample, hw: tuple[int, int]) -> None:
        if 'gt_instances' in sample and 'masks' in sample.gt_instances:
            sample.gt_instances.masks = _pad_2d(sample.gt_instances.masks.bool(), hw, False)
        if 'gt_sem_seg' in sample:
            sample.gt_sem_seg = _pad_pixel_data(sample.gt_sem_seg, hw, self.seg_pad_value)
        if 'gt_panoptic_seg' in sample:
            sample.gt_panoptic_seg = _pad_pixel_data(sample.gt_panoptic_seg, hw, self.pan_pad_value)
