"""`SegDataSample`: the one data-sample type every ovseg dataset, model and metric exchanges.

Conventions (shared by all modules; see docs/design.md):

Ground truth (set by ``PackSegInputs``)
  * ``gt_instances``   InstanceData: ``labels`` (LongTensor[N], contiguous class index 0..C-1),
    ``masks`` (BoolTensor[N, H, W] at the *input* resolution, i.e. after train transforms). Crowd segments
    are never targets. Present for training samples.
  * ``gt_sem_seg``     PixelData ``data``: LongTensor[1, H, W], 255 = ignore.
  * ``gt_panoptic_seg`` PixelData ``data``: LongTensor[1, H, W] of segment ids (0 = VOID) at the
    *original* image resolution for evaluation; ``metainfo['segments_info']`` describes them.

Predictions (set by a model's ``predict``), always at the original image size ``ori_shape``
  * ``pred_panoptic_seg`` PixelData ``data``: LongTensor[1, H, W] segment ids, 0 = VOID; the segments are
    described by ``pred_segments_info``: list of ``{'id', 'category_id' (contiguous), 'isthing', 'score'}``.
  * ``pred_sem_seg``   PixelData ``data``: LongTensor[1, H, W] labels; optional ``seg_logits`` PixelData
    (C×H×W scores).
  * ``pred_instances`` InstanceData: ``masks`` (Bool[K,H,W]), ``labels`` (Long[K]), ``scores`` (Float[K]).

Referring segmentation (one sample = one image with N expressions, LISA / Sa2VA grouping; plain fields,
read by ``ReferringSegMetric``)
  * ``gt_masks``       Tensor[N, H, W] (bool, or uint8 0/1 with 255 = ignore) at the original image size,
    one GT mask per expression; the expressions themselves travel in metainfo ``expressions`` (list[str]).
  * ``pred_masks``     BoolTensor[N, H, W] at the same size, one binarised prediction per expression in the
    same order (an expression without a predicted mask gets an all-False mask).

Metainfo keys: ``img_path``, ``img_id``, ``ori_shape`` (h, w), ``img_shape`` (after resize/crop),
``pad_shape``, ``batch_input_shape``, ``scale_factor`` (w, h), ``flip``, ``flip_direction``,
``seg_map_path``, ``segments_info`` (GT, contiguous ``category_id``, ``iscrowd``, ``area``, ``isthing``),
plus any ``extra_meta_keys`` a project's ``PackSegInputs`` adds (DreamMask: ``is_synthetic``).
"""
from __future__ import annotations

from mmengine.structures import BaseDataElement, InstanceData, PixelData


class SegDataSample(BaseDataElement):
    """Data sample with typed properties for panoptic / semantic / instance GT and predictions."""

    @property
    def gt_instances(self) -> InstanceData:
        return self._gt_instances

    @gt_instances.setter
    def gt_instances(self, value: InstanceData) -> None:
        self.set_field(value, '_gt_instances', dtype=InstanceData)

    @gt_instances.deleter
    def gt_instances(self) -> None:
        del self._gt_instances

    @property
    def gt_sem_seg(self) -> PixelData:
        return self._gt_sem_seg

    @gt_sem_seg.setter
    def gt_sem_seg(self, value: PixelData) -> None:
        self.set_field(value, '_gt_sem_seg', dtype=PixelData)

    @gt_sem_seg.deleter
    def gt_sem_seg(self) -> None:
        del self._gt_sem_seg

    @property
    def gt_panoptic_seg(self) -> PixelData:
        return self._gt_panoptic_seg

    @gt_panoptic_seg.setter
    def gt_panoptic_seg(self, value: PixelData) -> None:
        self.set_field(value, '_gt_panoptic_seg', dtype=PixelData)

    @gt_panoptic_seg.deleter
    def gt_panoptic_seg(self) -> None:
        del self._gt_panoptic_seg

    @property
    def pred_instances(self) -> InstanceData:
        return self._pred_instances

    @pred_instances.setter
    def pred_instances(self, value: InstanceData) -> None:
        self.set_field(value, '_pred_instances', dtype=InstanceData)

    @pred_instances.deleter
    def pred_instances(self) -> None:
        del self._pred_instances

    @property
    def pred_sem_seg(self) -> PixelData:
        return self._pred_sem_seg

    @pred_sem_seg.setter
    def pred_sem_seg(self, value: PixelData) -> None:
        self.set_field(value, '_pred_sem_seg', dtype=PixelData)

    @pred_sem_seg.deleter
    def pred_sem_seg(self) -> None:
        del self._pred_sem_seg

    @property
    def pred_panoptic_seg(self) -> PixelData:
        return self._pred_panoptic_seg

    @pred_panoptic_seg.setter
    def pred_panoptic_seg(self, value: PixelData) -> None:
        self.set_field(value, '_pred_panoptic_seg', dtype=PixelData)

    @pred_panoptic_seg.deleter
    def pred_panoptic_seg(self) -> None:
        del self._pred_panoptic_seg
