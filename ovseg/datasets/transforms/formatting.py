"""``PackSegInputs``: the last pipeline step, turning the results dict into ``inputs`` + ``SegDataSample``."""
from __future__ import annotations

import copy
from collections.abc import Sequence

import numpy as np
import torch
from mmcv.transforms import BaseTransform
from mmengine.structures import InstanceData, PixelData

from ovseg.registry import TRANSFORMS
from ovseg.structures.panoptic_format import IGNORE_INDEX
from ovseg.structures.seg_data_sample import SegDataSample

DEFAULT_META_KEYS = ('img_path', 'img_id', 'ori_shape', 'img_shape', 'pad_shape', 'scale_factor', 'flip',
                     'flip_direction', 'seg_map_path', 'segments_info', 'sample_idx')


@TRANSFORMS.register_module()
class PackSegInputs(BaseTransform):
    """Pack into ``dict(inputs=uint8 3×H×W tensor, data_samples=SegDataSample)``.

    Sets ``gt_panoptic_seg`` (from ``gt_pan_id``) and ``gt_sem_seg`` (from ``gt_seg_map``) whenever present.
    With ``with_instances`` it also builds ``gt_instances`` (training targets): one bool mask per non-crowd
    segment of ``segments_info``, labelled with its contiguous class; for semantic-only samples, one mask per
    class present in ``gt_seg_map`` (the sample's ``ignore_index`` excluded).

    Args:
        with_instances: build ``gt_instances``.
        keep_empty_segments: a segment that the crop (LSJ) removed from the map stays a target with an empty
            mask, as FC-CLIP's ``coco_panoptic_new_baseline_dataset_mapper.py`` does (one mask per non-crowd
            ``segments_info`` entry, whatever the crop left); the matched query then learns "this class, no
            pixels here". ``False`` drops such segments (a target per segment still visible).
        meta_keys: results keys copied into the data sample's metainfo.
        extra_meta_keys: keys a project adds to ``meta_keys`` (e.g. DreamMask's ``is_synthetic``).
    """

    def __init__(self, with_instances: bool = False, keep_empty_segments: bool = True,
                 meta_keys: Sequence[str] = DEFAULT_META_KEYS, extra_meta_keys: Sequence[str] = ()) -> None:
        self.with_instances = with_instances
        self.keep_empty_segments = keep_empty_segments
        self.meta_keys = tuple(meta_keys) + tuple(k for k in extra_meta_keys if k not in meta_keys)

    def transform(self, results: dict) -> dict:
        img = results['img']
        if img.ndim == 2:
            img = img[..., None]
        inputs = torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)))
        sample = SegDataSample()
        if 'gt_pan_id' in results:
            pan = torch.from_numpy(results['gt_pan_id'].astype(np.int64))
            sample.gt_panoptic_seg = PixelData(data=pan[None])
        if 'gt_seg_map' in results:
            sample.gt_sem_seg = PixelData(data=torch.from_numpy(results['gt_seg_map'].astype(np.int64))[None])
        if self.with_instances:
            sample.gt_instances = self._instances(results, img.shape[:2], self.keep_empty_segments)
        meta = {k: copy.deepcopy(results[k]) for k in self.meta_keys if k in results}
        meta.setdefault('segments_info', [])
        sample.set_metainfo(meta)
        return dict(inputs=inputs, data_samples=sample)

    @staticmethod
    def _instances(results: dict, hw: tuple[int, int], keep_empty: bool) -> InstanceData:
        masks: list[np.ndarray] = []
        labels: list[int] = []
        if 'gt_pan_id' in results:
            pan = results['gt_pan_id']
            present = None if keep_empty else set(np.unique(pan).tolist())
            for seg in results.get('segments_info', []):
                if seg.get('iscrowd', 0) or (present is not None and seg['id'] not in present):
                    continue
                masks.append(pan == seg['id'])
                labels.append(int(seg['category_id']))
        elif 'gt_seg_map' in results:
            sem = results['gt_seg_map']
            ignore = int(results.get('ignore_index', IGNORE_INDEX))  # 65535 where 255 is a class
            for cls in np.unique(sem).tolist():
                if cls == ignore:
                    continue
                masks.append(sem == cls)
                labels.append(int(cls))
        instances = InstanceData()
        if masks:
            instances.masks = torch.from_numpy(np.stack(masks))
        else:
            instances.masks = torch.zeros((0,) + tuple(hw), dtype=torch.bool)
        instances.labels = torch.tensor(labels, dtype=torch.long)
        return instances

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(with_instances={self.with_instances}, '
                f'keep_empty_segments={self.keep_empty_segments}, meta_keys={self.meta_keys})')
