"""Mask average pooling: the region feature of each predicted mask (FC-CLIP / ODISE ``MaskPooling``)."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

MASK_POOL_EPS = 1e-8  # FC-CLIP MaskPooling denominator epsilon


def mask_pooling_weights(mask_logits: Tensor, size: tuple[int, int]) -> Tensor:
    """Averaging weights of FC-CLIP / ODISE ``MaskPooling``: masks (B×Q×h×w logits) resized bilinearly to ``size``,
    binarized at ``> 0`` and divided by their area → B×Q×(H·W), without gradient (an empty mask weighs nothing)."""
    with torch.no_grad():
        if tuple(mask_logits.shape[-2:]) != tuple(size):
            mask_logits = F.interpolate(mask_logits, size=size, mode='bilinear', align_corners=False)
        mask = (mask_logits.detach() > 0).flatten(2)
        mask = mask.to(torch.get_default_dtype() if not mask_logits.is_floating_point() else mask_logits.dtype)
        return mask / (mask.sum(dim=-1, keepdim=True) + MASK_POOL_EPS)


def pool_with_weights(features: Tensor, weights: Tensor) -> Tensor:
    """B×C×H×W features averaged with B×N×(H·W) weights → B×N×C (gradients reach the features only).

    B×N×HW @ B×HW×C on a transposed view of the features: no copy (an einsum would permute them)."""
    return torch.bmm(weights.to(features.dtype), features.flatten(2).transpose(1, 2))


def mask_pooling(features: Tensor, mask_logits: Tensor) -> Tensor:
    """Average ``features`` (B×C×H×W) inside each binarized mask (B×Q×h×w logits) → B×Q×C.

    The mask is resized bilinearly to the feature size, binarized at ``> 0`` and detached, so gradients flow into
    the features only; an empty mask yields a zero vector.
    """
    return pool_with_weights(features, mask_pooling_weights(mask_logits, tuple(features.shape[-2:])))
