"""Mask-classification post-processing (MaskFormer / Mask2Former / FC-CLIP inference), as pure functions.

All functions take the predictions of ONE image:

* ``mask_cls``: ``[Q, C+1]`` class **logits** (any unnormalised log-probabilities; FC-CLIP passes
  ``log(p + 1e-8)`` after its geometric ensemble). A softmax over the last dim is applied inside, so raw
  logits and log-probabilities give the same result. The last column is VOID ("no object").
* ``mask_pred``: ``[Q, H, W]`` mask **logits** (sigmoid applied inside).

Semantics follow FC-CLIP ``fcclip/fcclip.py``: object-mask threshold (0.0 in the eval
configs), overlap threshold 0.8, stuff segments of one class merged, semantic =
``einsum(softmax(cls)[:, :-1], sigmoid(mask))``, instance top-k over query×class with thing-only filtering
in panoptic mode and score = class prob × mean mask prob inside the binary mask.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ['panoptic_inference', 'semantic_inference', 'instance_inference', 'sem_seg_postprocess']


def _thing_lookup(is_thing: Sequence[bool] | Tensor, num_classes: int, device) -> Tensor:
    flags = torch.as_tensor(list(is_thing) if not isinstance(is_thing, Tensor) else is_thing,
                            dtype=torch.bool,
                            device=device).flatten()
    if flags.numel() != num_classes:
        raise ValueError(
            f'is_thing has {flags.numel()} entries but mask_cls has {num_classes} classes (+ void)')
    return flags


def panoptic_inference(mask_cls: Tensor,
                       mask_pred: Tensor,
                       is_thing: Sequence[bool] | Tensor,
                       object_mask_threshold: float = 0.0,
                       overlap_threshold: float = 0.8) -> tuple[Tensor, list[dict]]:
    """Merge per-query masks into one panoptic map.

    Args:
        mask_cls: ``[Q, C+1]`` class logits / log-probs (softmax applied here; last column = void).
        mask_pred: ``[Q, H, W]`` mask logits.
        is_thing: ``C`` booleans.
        object_mask_threshold: keep a query only if its best non-void probability is **>** this.
        overlap_threshold: drop a segment whose visible area / area(sigmoid(mask) >= 0.5) is below this.

    Returns:
        ``pan_seg``: LongTensor ``[H, W]`` of segment ids (0 = VOID, ids 1..N);
        ``segments_info``: ``[{'id', 'category_id', 'isthing', 'score'}]``; merged stuff keeps the highest
        query score.
    """
    num_classes = mask_cls.shape[-1] - 1
    thing = _thing_lookup(is_thing, num_classes, mask_cls.device)
    probs = F.softmax(mask_cls.float(), dim=-1)
    scores, labels = probs.max(-1)
    masks = mask_pred.float().sigmoid()
    keep = labels.ne(num_classes) & (scores > object_mask_threshold)
    cur_scores, cur_classes, cur_masks = scores[keep], labels[keep], masks[keep]

    h, w = masks.shape[-2:]
    pan_seg = torch.zeros((h, w), dtype=torch.long, device=masks.device)
    segments_info: list[dict] = []
    if cur_masks.shape[0] == 0:
        return pan_seg, segments_info

    cur_mask_ids = (cur_scores.view(-1, 1, 1) * cur_masks).argmax(0)
    stuff_segment: dict[int, dict] = {}
    next_id = 0
    for k in range(cur_classes.shape[0]):
        pred_class = int(cur_classes[k])
        isthing = bool(thing[pred_class])
        assigned = cur_mask_ids == k
        confident = cur_masks[k] >= 0.5
        mask_area = int(assigned.sum())
        original_area = int(confident.sum())
        mask = assigned & confident
        if mask_area == 0 or original_area == 0 or not bool(mask.any()):
            continue
        if mask_area / original_area < overlap_threshold:
            continue
        score = float(cur_scores[k])
        if not isthing and pred_class in stuff_segment:
            seg = stuff_segment[pred_class]
            pan_seg[mask] = seg['id']
            seg['score'] = max(seg['score'], score)
            continue
        next_id += 1
        pan_seg[mask] = next_id
        seg = {'id': next_id, 'category_id': pred_class, 'isthing': isthing, 'score': score}
        segments_info.append(seg)
        if not isthing:
            stuff_segment[pred_class] = seg
    return pan_seg, segments_info


def semantic_inference(mask_cls: Tensor, mask_pred: Tensor) -> Tensor:
    """Per-pixel class scores ``[C, H, W]`` = ``einsum('qc,qhw->chw', softmax(cls)[:, :-1], sigmoid(mask))``.

    ``mask_cls`` are logits / log-probs (softmax applied here).
    """
    cls = F.softmax(mask_cls.float(), dim=-1)[..., :-1]
    return torch.einsum('qc,qhw->chw', cls, mask_pred.float().sigmoid())


def instance_inference(mask_cls: Tensor,
                       mask_pred: Tensor,
                       is_thing: Sequence[bool] | Tensor | None = None,
                       topk: int = 100,
                       thing_only: bool = False) -> dict[str, Tensor]:
    """Top-k (query, class) pairs as instances.

    Args:
        mask_cls: ``[Q, C+1]`` class logits / log-probs (softmax applied here).
        mask_pred: ``[Q, H, W]`` mask logits (already at the output resolution).
        is_thing: ``C`` booleans, needed when ``thing_only``.
        topk: detections per image (detectron2 ``TEST.DETECTIONS_PER_IMAGE`` = 100); clipped to Q·C.
        thing_only: keep only thing classes (FC-CLIP does so when panoptic output is on).

    Returns:
        dict with ``masks`` (Bool ``[K, H, W]`` = logit > 0), ``labels`` (Long ``[K]``),
        ``scores`` (Float ``[K]`` = class prob × mean sigmoid(mask) inside the binary mask),
        ``query_index`` (Long ``[K]``). Sorted by decreasing class probability.
    """
    num_queries, num_classes = mask_cls.shape[0], mask_cls.shape[-1] - 1
    scores = F.softmax(mask_cls.float(), dim=-1)[:, :-1]
    labels = torch.arange(num_classes, device=mask_cls.device).repeat(num_queries)
    k = min(int(topk), scores.numel())
    cls_scores, topk_indices = scores.flatten().topk(k, sorted=True)
    labels_k = labels[topk_indices]
    query_k = torch.div(topk_indices, num_classes, rounding_mode='floor')
    if thing_only:
        if is_thing is None:
            raise ValueError('instance_inference(thing_only=True) needs is_thing')
        thing = _thing_lookup(is_thing, num_classes, mask_cls.device)
        keep = thing[labels_k]
        cls_scores, labels_k, query_k = cls_scores[keep], labels_k[keep], query_k[keep]
    logits = mask_pred[query_k].float()
    binary = logits > 0
    flat = binary.flatten(1).float()
    mask_scores = (logits.sigmoid().flatten(1) * flat).sum(1) / (flat.sum(1) + 1e-6)
    return {'masks': binary, 'labels': labels_k, 'scores': cls_scores * mask_scores, 'query_index': query_k}


def sem_seg_postprocess(result: Tensor, img_size: Sequence[int], output_height: int,
                        output_width: int) -> Tensor:
    """Crop the padding off a ``[..., Hpad, Wpad]`` prediction and resize it to the original image size.

    Args:
        result: ``[C, H, W]`` (or ``[Q, H, W]``) map at the padded input resolution.
        img_size: ``(h, w)`` of the valid (un-padded) image inside ``result``.
        output_height, output_width: the original image size.
    """
    h, w = int(img_size[0]), int(img_size[1])
    result = result[..., :h, :w]
    squeeze = result.dim() == 2
    x = result[None, None] if squeeze else result[None]
    x = F.interpolate(x.float(),
                      size=(int(output_height), int(output_width)),
                      mode='bilinear',
                      align_corners=False)
    return x[0, 0] if squeeze else x[0]
