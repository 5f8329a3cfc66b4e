"""Mask average pooling: the region feature of each predicted mask (FC-CLIP / ODISE ``MaskPooling``)."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

MASK_POOL_EPS = 1e-8  # FC-CLIP MaskPooling denominator epsilon


def mask_pooling(features: Tensor, mask_logits: Tensor) -> Tensor:
    """Average ``features`` (B×C×H×W) inside each binarized mask (B×Q×h×w logits) → B×Q×C.

    The mask is resized bilinearly to the feature size, binarized at ``> 0`` and detached, so gradients flow into
    the features only; an empty mask yields a zero vector.
    """
    if features.shape[-2:] != mask_logits.shape[-2:]:
        mask_logits = F.interpolate(mask_logits, size=features.shape[-2:], mode='bilinear', align_corners=False)
    with torch.no_grad():
        mask = (mask_logits.detach() > 0).to(features.dtype)
        denorm = mask.sum(dim=(-1, -2), keepdim=True) + MASK_POOL_EPS
    return torch.einsum('bchw,bqhw->bqc', features, mask / denorm)
