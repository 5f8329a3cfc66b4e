"""Pipeline steps that turn a region pair (caption view + segmentation view) into the mask-caption loop's inputs.

A region pair (``region_data.LoadRegionPair`` for SA-V / SA-1B / Open Images / ToyScenes pairs, or
:class:`ReferringToRegionPair` for RefCOCO-style data) holds ``img`` + ``region_mask`` (the region to describe:
stage 1's input), ``img2`` + ``region_mask2`` (the same object in another frame, or the same image: stage 2's
target) and optionally a ground-truth ``expression``.

* :class:`FormatMaskCaptionInputs`: InternVL tiles of both views (one set when the views are the same image), the
  SAM2 input of the segmentation view.
* :class:`PackMaskCaptionInputs`: ``inputs = dict(tiles, tiles2, sam)``; a ``SegDataSample`` whose ``gt_masks``
  (1×H2×W2) is the segmentation view's region (what stage 2 and the re-segmentation metric score) and whose
  ``prompt_masks`` (1×H×W) is the caption view's region; ``ori_shape`` / ``img_path`` describe the segmentation view
  (the frame the predicted mask belongs to), ``caption_img_path`` / ``caption_shape`` the caption view.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from mmcv.transforms import BaseTransform
from PIL import Image

from ovseg.datasets.referring import PackReferringInputs
from ovseg.registry import TRANSFORMS

from .image_tiling import preprocess_image
from .transforms import sam2_input

#: Metainfo the mask-caption loop reads (besides PackSegInputs' defaults).
MASK_CAPTION_META_KEYS = ('expression', 'reference_expressions', 'category_name', 'source', 'record_id',
                          'caption_img_path', 'caption_shape', 'same_view')


def _check_region(mask: Any, image: np.ndarray, what: str, results: dict) -> np.ndarray:
    mask = np.asarray(mask, dtype=bool)
    where = f"{results.get('source', 'region pair')} record {results.get('record_id', results.get('img_path'))!r}"
    if mask.shape != image.shape[:2]:
        raise ValueError(f'{where}: {what} is {mask.shape} but its image is {image.shape[:2]}')
    if not mask.any():
        raise ValueError(f'{where}: {what} is empty (nothing to describe or find)')
    return mask


@TRANSFORMS.register_module()
class ReferringToRegionPair(BaseTransform):
    """A RefCOCO-style sample of one referred object (``RefCocoDataset(group='sentence')`` or ``group='ref'`` +
    ``LoadImage`` + ``LoadReferringAnnotations``) as a region pair: both views are the image, the region is the
    referred mask, one of its sentences (drawn with ``np.random``) is the ground-truth caption (the loop skips
    stage-1 generation for it) and all of them are ``reference_expressions`` (captioning references).

    Args:
        keep_expression: ``False`` drops the text, so the sample is a plain region to caption (stage 1 runs for it;
            e.g. RefCOCOg regions for the region-captioning evaluation or extra self-training regions).
    """

    def __init__(self, keep_expression: bool = True) -> None:
        self.keep_expression = bool(keep_expression)

    def transform(self, results: dict) -> dict:
        masks, exprs = results.get('gt_masks'), list(results.get('expressions') or [])
        ann_ids = set(results.get('ann_ids') or [None])
        if masks is None or not exprs or len(masks) != len(exprs) or len(ann_ids) != 1:
            raise ValueError(f"ReferringToRegionPair: sample '{results.get('img_path')}' must describe one region "
                             "(RefCocoDataset(group='sentence' or 'ref')), got "
                             f'{len(exprs)} expressions of {len(ann_ids)} objects')
        results['region_mask'] = results['region_mask2'] = np.asarray(masks[0], dtype=bool)
        results['img2'], results['img2_path'] = results['img'], results.get('img_path')
        pick = int(np.random.randint(len(exprs)))  # seeded per sample by ovseg's samplers
        results['expression'] = exprs[pick] if self.keep_expression else None
        results['reference_expressions'] = exprs
        results.setdefault('category_name', None)
        results.setdefault('source', 'refcoco')
        ref = (results.get('ref_ids') or [None])[0]
        results['record_id'] = f"{results.get('img_path')} ref_id {ref}"
        return results


@TRANSFORMS.register_module()
class FormatMaskCaptionInputs(BaseTransform):
    """InternVL tiles of the caption view (``img``) and of the segmentation view (``img2``) and SAM2's input of the
    segmentation view; checks both region masks (right size, not empty).

    Args:
        image_size / min_num / max_num / use_thumbnail: InternVL dynamic tiling (Sa2VA: 448, 1, 12, True).
        sam_image_size: the grounding encoder's input size (SAM2-L 1024; the tiny toy SAM2 256).
    """

    def __init__(self, image_size: int = 448, min_num: int = 1, max_num: int = 12, use_thumbnail: bool = True,
                 sam_image_size: int = 1024) -> None:
        self.image_size, self.min_num, self.max_num = int(image_size), int(min_num), int(max_num)
        self.use_thumbnail, self.sam_image_size = bool(use_thumbnail), int(sam_image_size)

    def _tiles(self, img: np.ndarray) -> torch.Tensor:
        tiles, _ = preprocess_image(Image.fromarray(img), self.min_num, self.max_num, self.image_size,
                                    self.use_thumbnail)
        return tiles

    def transform(self, results: dict) -> dict:
        for key in ('img', 'region_mask', 'img2', 'region_mask2'):
            if key not in results:
                raise KeyError(f'FormatMaskCaptionInputs: results has no {key!r} (load a region pair first: '
                               'LoadRegionPair or ReferringToRegionPair)')
        img, img2 = results['img'], results['img2']
        for name, im in (('img', img), ('img2', img2)):
            if im.ndim != 3 or im.shape[2] != 3:
                raise ValueError(f"FormatMaskCaptionInputs: {name} of record {results.get('record_id')!r} is not an "
                                 f'RGB image ({im.shape})')
        results['region_mask'] = _check_region(results['region_mask'], img, 'region_mask', results)
        results['region_mask2'] = _check_region(results['region_mask2'], img2, 'region_mask2', results)
        same = img2 is img or (img2.shape == img.shape and np.array_equal(img2, img))
        results['same_view'] = bool(same)
        results['mc_tiles'] = self._tiles(img)
        results['mc_tiles2'] = None if same else self._tiles(img2)
        results['mc_sam'] = sam2_input(img2, self.sam_image_size)
        return results

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(image_size={self.image_size}, max_num={self.max_num}, '
                f'sam_image_size={self.sam_image_size})')


@TRANSFORMS.register_module()
class PackMaskCaptionInputs(PackReferringInputs):
    """``inputs = dict(tiles=(T,3,S,S), tiles2=(T2,3,S,S) or None, sam=(3,s,s))``; the data sample of
    :class:`PackReferringInputs` for the segmentation view (``gt_masks`` = its region, 1×H2×W2) plus
    ``prompt_masks`` (1×H×W, the caption view's region) and :data:`MASK_CAPTION_META_KEYS` in metainfo."""

    def __init__(self, extra_meta_keys: Sequence[str] = MASK_CAPTION_META_KEYS, **kwargs: Any) -> None:
        super().__init__(extra_meta_keys=extra_meta_keys, **kwargs)

    def transform(self, results: dict) -> dict:
        if 'mc_tiles' not in results:
            raise KeyError('PackMaskCaptionInputs: results has no tiles (add FormatMaskCaptionInputs first)')
        img, img2 = results['img'], results['img2']
        view = dict(results)
        view['caption_img_path'] = results.get('img_path')
        view['caption_shape'] = tuple(img.shape[:2])
        view['img'], view['img_path'] = img2, results.get('img2_path', results.get('img_path'))
        view['ori_shape'] = view['img_shape'] = tuple(img2.shape[:2])
        view['gt_masks'] = results['region_mask2'][None]
        view.setdefault('expression', None)
        view.setdefault('category_name', None)
        packed = super().transform(view)
        packed['data_samples'].prompt_masks = torch.from_numpy(np.ascontiguousarray(results['region_mask'][None]))
        packed['inputs'] = dict(tiles=results['mc_tiles'], tiles2=results['mc_tiles2'], sam=results['mc_sam'])
        return packed
