"""FC-CLIP's inference-time class scoring: the frozen-CLIP (out-of-vocabulary) classifier and the geometric ensemble.

FC-CLIP classifies each predicted mask twice: the trained in-vocabulary head (``InVocabClassifier``) and the
frozen CLIP, which embeds the masked region of its dense map and compares it with the same text classifier under
CLIP's own, frozen temperature. The two are fused by a geometric ensemble that trusts CLIP more (β) for classes
unseen in training than for seen ones (α).
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from .class_heads import get_classification_logits


def valid_mask_from_logits(mask_logits: Tensor, size: tuple[int, int] | None = None) -> Tensor:
    """B×Q bool: does the mask (resized bilinearly to ``size``) have any pixel with logit > 0?"""
    if size is not None and mask_logits.shape[-2:] != tuple(size):
        mask_logits = F.interpolate(mask_logits, size=size, mode='bilinear', align_corners=False)
    return (mask_logits > 0).flatten(-2).any(-1)


def out_vocab_logits(backbone: Any, clip_vis_dense: Tensor, mask_logits: Tensor, text_classifier: Tensor,
                     num_templates: Sequence[int]) -> tuple[Tensor, Tensor]:
    """Frozen-CLIP (out-of-vocabulary) logits for each predicted mask.

    Masks are resized bilinearly to ``clip_vis_dense`` and embedded by the CLIP backbone's
    ``mask_embeddings`` (mask pooling + CLIP head for ConvNeXt, a masked attention pool for ResNet); scores use
    CLIP's frozen ``logit_scale`` and the same classifier (max over synonyms).

    Returns:
        ``(logits B×Q×(C+1), valid B×Q bool)`` — ``valid`` marks masks with at least one pixel on the CLIP grid,
        for ``geometric_ensemble(valid_mask=...)``.
    """
    masks = F.interpolate(mask_logits, size=clip_vis_dense.shape[-2:], mode='bilinear', align_corners=False)
    with torch.no_grad():
        emb = backbone.mask_embeddings(clip_vis_dense, masks)
        logits = get_classification_logits(emb, text_classifier, backbone.clip_model.logit_scale.detach(),
                                           num_templates)
    return logits, valid_mask_from_logits(masks)


def geometric_ensemble(in_logits: Tensor, out_logits: Tensor, seen_mask: Tensor, alpha: float = 0.4,
                       beta: float = 0.8, valid_mask: Tensor | None = None) -> Tensor:
    """FC-CLIP's geometric ensemble of in-vocab and out-of-vocab predictions (inference).

    1. void is dropped from both heads; ``p_in = softmax(in)``, ``p_out = softmax(out)``;
    2. seen classes: ``log(p_in^(1-α) · p_out^α)``, unseen: ``log(p_in^(1-β) · p_out^β)``;
    3. if ``valid_mask`` (B×Q) is given, α = β = 0 for invalid (empty-mask) queries
       (``ENSEMBLE_ON_VALID_MASK``, used with ResNet CLIPs);
    4. ``p_void = softmax(in incl. void)[..., -1]``; the result is
       ``log([softmax(step 2)·(1 − p_void), p_void] + 1e-8)``.

    Args:
        in_logits, out_logits: B×Q×(C+1) logits, void last.
        seen_mask: bool/0-1 tensor of C (class seen in training).
    Returns:
        B×Q×(C+1) log-probabilities (void last).
    """
    if in_logits.shape != out_logits.shape:
        raise ValueError(f'in/out logits shapes differ: {tuple(in_logits.shape)} vs {tuple(out_logits.shape)}')
    num_classes = in_logits.shape[-1] - 1
    seen = seen_mask.to(device=in_logits.device).bool().reshape(-1)
    if seen.numel() != num_classes:
        raise ValueError(f'seen_mask has {seen.numel()} entries, logits have {num_classes} classes (+void)')
    p_in = in_logits[..., :-1].softmax(-1)
    p_out = out_logits[..., :-1].to(p_in.dtype).softmax(-1)
    a: float | Tensor = alpha
    b: float | Tensor = beta
    if valid_mask is not None:
        v = valid_mask.to(device=p_in.device, dtype=p_in.dtype).unsqueeze(-1)
        a = alpha * v
        b = beta * v
    seen_logits = (p_in ** (1 - a) * p_out ** a).log()
    unseen_logits = (p_in ** (1 - b) * p_out ** b).log()
    cls = torch.where(seen, seen_logits, unseen_logits)
    p_void = F.softmax(in_logits, dim=-1)[..., -1:]
    probs = torch.cat([cls.softmax(-1) * (1.0 - p_void), p_void], dim=-1)
    return torch.log(probs + 1e-8)
