"""FC-CLIP classification heads: mask pooling, in-vocab head, out-of-vocab head, geometric ensemble.

FC-CLIP classifies each predicted mask twice:

* **in-vocabulary** (trained): the decoder query plus the mask-pooled pixel-decoder feature is projected
  into CLIP space by a small MLP and compared with the text classifier under a *learnable* temperature;
* **out-of-vocabulary** (frozen, inference only): the frozen CLIP dense map is pooled inside the mask and
  projected by CLIP's own head, then compared under CLIP's *frozen* temperature.

The two are fused by a geometric ensemble that trusts CLIP more (β) for classes unseen in training than
for seen ones (α). Parameter names mirror ``sem_seg_head.predictor.{class_embed,_mask_pooling_proj,
logit_scale}`` of the official checkpoints so conversion is a pure prefix map.
"""
from __future__ import annotations

import math
from typing import Any, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ovseg.registry import MODELS

__all__ = ['mask_pooling', 'MaskPooling', 'get_classification_logits', 'MLP', 'InVocabClassifier',
           'OutOfVocabClassifier', 'out_vocab_logits', 'geometric_ensemble', 'GeometricEnsemble',
           'category_overlap_mask', 'valid_mask_from_logits']

MASK_POOL_EPS = 1e-8  # FC-CLIP MaskPooling denominator epsilon
LOGIT_SCALE_MAX = 100.0


def mask_pooling(features: Tensor, mask_logits: Tensor) -> Tensor:
    """Average ``features`` (B×C×H×W) inside each binarized mask (B×Q×h×w logits) → B×Q×C.

    The mask is resized bilinearly to the feature size, binarized at ``> 0`` and detached, so gradients
    flow into the features only (FC-CLIP / ODISE ``MaskPooling``); an empty mask yields a zero vector.
    """
    if features.shape[-2:] != mask_logits.shape[-2:]:
        mask_logits = F.interpolate(mask_logits, size=features.shape[-2:], mode='bilinear',
                                    align_corners=False)
    with torch.no_grad():
        mask = (mask_logits.detach() > 0).to(features.dtype)
        denorm = mask.sum(dim=(-1, -2), keepdim=True) + MASK_POOL_EPS
    return torch.einsum('bchw,bqhw->bqc', features, mask / denorm)


@MODELS.register_module()
class MaskPooling(nn.Module):
    """Module wrapper of :func:`mask_pooling` (no parameters)."""

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        return mask_pooling(x, mask)


def get_classification_logits(x: Tensor, text_classifier: Tensor, logit_scale: Tensor,
                              num_templates: Sequence[int]) -> Tensor:
    """Cosine-similarity logits with max over synonyms; last column is void.

    Args:
        x: B×Q×D (any leading dims) region embeddings, normalized here.
        text_classifier: (S+1)×D, already L2-normalized, void row last.
        logit_scale: **log** temperature (the raw learnable/frozen parameter, as in FC-CLIP); the scale
            applied is ``clamp(exp(logit_scale), max=100)``.
        num_templates: synonyms per class (sums to S) — FC-CLIP's name for it.
    Returns:
        B×Q×(C+1) logits: per class the max over its synonyms, then the void logit.
    """
    nums = [int(n) for n in num_templates]
    if sum(nums) + 1 != text_classifier.shape[0]:
        raise ValueError(f'text_classifier has {text_classifier.shape[0]} rows but num_templates sums to '
                         f'{sum(nums)} (+1 void row expected)')
    if min(nums, default=1) < 1:
        raise ValueError('every class needs at least one synonym row')
    x = F.normalize(x, dim=-1)
    scale = torch.clamp(logit_scale.exp(), max=LOGIT_SCALE_MAX)
    logits = scale * (x @ text_classifier.t().to(x.dtype))
    syn_logits, void_logit = logits[..., :-1], logits[..., -1:]
    if all(n == 1 for n in nums):
        return torch.cat([syn_logits, void_logit], dim=-1)
    # vectorized segment max: pad each class's synonyms to the max count with -inf
    num_classes, max_n = len(nums), max(nums)
    counts = torch.tensor(nums, device=x.device)
    starts = torch.cumsum(counts, 0) - counts
    offs = torch.arange(max_n, device=x.device)
    index = starts[:, None] + offs[None, :]  # C×max_n
    valid = offs[None, :] < counts[:, None]
    index = torch.where(valid, index, torch.zeros_like(index))
    gathered = syn_logits[..., index.reshape(-1)].reshape(*syn_logits.shape[:-1], num_classes, max_n)
    gathered = gathered.masked_fill(~valid, float('-inf'))
    return torch.cat([gathered.max(dim=-1).values, void_logit], dim=-1)


class MLP(nn.Module):
    """Plain MLP with ReLU between layers (Mask2Former/FC-CLIP ``MLP``; params ``layers.{i}.*``)."""

    def __init__(self, input_dim: int, hidden_dim: int, output_dim: int, num_layers: int) -> None:
        super().__init__()
        self.num_layers = num_layers
        h = [hidden_dim] * (num_layers - 1)
        self.layers = nn.ModuleList(nn.Linear(n, k) for n, k in zip([input_dim] + h, h + [output_dim]))

    def forward(self, x: Tensor) -> Tensor:
        for i, layer in enumerate(self.layers):
            x = F.relu(layer(x)) if i < self.num_layers - 1 else layer(x)
        return x


@MODELS.register_module()
class InVocabClassifier(nn.Module):
    """FC-CLIP's trained (in-vocabulary) class head.

    ``logits = cos(class_embed(_mask_pooling_proj(maskpool(mask_features, masks)) + query), text) · T``
    with a learnable temperature ``T = clamp(exp(logit_scale), 100)`` initialized to 1/0.07.

    Args:
        hidden_dim: decoder / mask-feature width (256).
        embed_dim: CLIP embedding dim (768 ConvNeXt-L, 1024 RN50, ...).
        num_layers: layers of ``class_embed`` (3).
        logit_scale_init: initial log temperature (``log(1/0.07)``).
    """

    def __init__(self, hidden_dim: int = 256, embed_dim: int = 768, num_layers: int = 3,
                 logit_scale_init: float = math.log(1 / 0.07)) -> None:
        super().__init__()
        self.hidden_dim = hidden_dim
        self.embed_dim = embed_dim
        self._mask_pooling_proj = nn.Sequential(nn.LayerNorm(hidden_dim), nn.Linear(hidden_dim, hidden_dim))
        self.class_embed = MLP(hidden_dim, hidden_dim, embed_dim, num_layers)
        self.logit_scale = nn.Parameter(torch.ones([]) * logit_scale_init)

    def embed(self, decoder_output: Tensor, mask_features: Tensor, outputs_mask: Tensor) -> Tensor:
        """B×Q×hidden queries + B×hidden×H×W mask features + B×Q×h×w mask logits → B×Q×embed_dim."""
        pooled = mask_pooling(mask_features, outputs_mask)
        pooled = self._mask_pooling_proj(pooled)
        return self.class_embed(pooled + decoder_output)

    def forward(self, decoder_output: Tensor, mask_features: Tensor, outputs_mask: Tensor,
                text_classifier: Tensor, num_templates: Sequence[int]) -> Tensor:
        """Returns B×Q×(C+1) logits (void last); ``text_classifier`` is (S+1)×D normalized, void last."""
        emb = self.embed(decoder_output, mask_features, outputs_mask)
        return get_classification_logits(emb, text_classifier, self.logit_scale, num_templates)


def valid_mask_from_logits(mask_logits: Tensor, size: Optional[Tuple[int, int]] = None) -> Tensor:
    """B×Q bool: does the mask (resized bilinearly to ``size``) have any pixel with logit > 0?"""
    if size is not None and mask_logits.shape[-2:] != tuple(size):
        mask_logits = F.interpolate(mask_logits, size=size, mode='bilinear', align_corners=False)
    return (mask_logits > 0).flatten(-2).any(-1)


def out_vocab_logits(backbone: Any, clip_vis_dense: Tensor, mask_logits: Tensor, text_classifier: Tensor,
                     num_templates: Sequence[int]) -> Tuple[Tensor, Tensor]:
    """Frozen-CLIP (out-of-vocabulary) logits for each predicted mask.

    Masks are resized bilinearly to ``clip_vis_dense``; ConvNeXt CLIPs mask-pool the dense map and run
    CLIP's head (``backbone.visual_prediction_forward``), ResNet CLIPs re-run the attention pool inside
    the mask. Scores use CLIP's frozen ``logit_scale`` and the same classifier (max over synonyms).

    Returns:
        ``(logits B×Q×(C+1), valid B×Q bool)`` — ``valid`` marks masks with at least one pixel on the
        CLIP grid, for ``geometric_ensemble(valid_mask=...)``.
    """
    masks = F.interpolate(mask_logits, size=clip_vis_dense.shape[-2:], mode='bilinear', align_corners=False)
    with torch.no_grad():
        if getattr(backbone, 'model_type', 'convnext') == 'convnext':
            pooled = mask_pooling(clip_vis_dense, masks)
            emb = backbone.visual_prediction_forward(pooled)
        else:
            emb = backbone.visual_prediction_forward(clip_vis_dense, masks)
        logits = get_classification_logits(emb, text_classifier, backbone.clip_model.logit_scale.detach(),
                                           num_templates)
    return logits, valid_mask_from_logits(masks)


@MODELS.register_module()
class OutOfVocabClassifier(nn.Module):
    """Parameter-free module form of :func:`out_vocab_logits`; the backbone is passed at call time so its
    frozen weights are not registered twice in the state dict."""

    def forward(self, backbone: Any, clip_vis_dense: Tensor, mask_logits: Tensor, text_classifier: Tensor,
                num_templates: Sequence[int]) -> Tuple[Tensor, Tensor]:
        return out_vocab_logits(backbone, clip_vis_dense, mask_logits, text_classifier, num_templates)


def geometric_ensemble(in_logits: Tensor, out_logits: Tensor, seen_mask: Tensor, alpha: float = 0.4,
                       beta: float = 0.8, valid_mask: Optional[Tensor] = None) -> Tensor:
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
        raise ValueError(f'in/out logits shapes differ: {tuple(in_logits.shape)} vs '
                         f'{tuple(out_logits.shape)}')
    num_classes = in_logits.shape[-1] - 1
    seen = seen_mask.to(device=in_logits.device).bool().reshape(-1)
    if seen.numel() != num_classes:
        raise ValueError(f'seen_mask has {seen.numel()} entries, logits have {num_classes} classes (+void)')
    p_in = in_logits[..., :-1].softmax(-1)
    p_out = out_logits[..., :-1].to(p_in.dtype).softmax(-1)
    a: Union[float, Tensor] = alpha
    b: Union[float, Tensor] = beta
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


@MODELS.register_module()
class GeometricEnsemble(nn.Module):
    """Config-buildable holder of α/β/valid-mask switch for :func:`geometric_ensemble`."""

    def __init__(self, alpha: float = 0.4, beta: float = 0.8, ensemble_on_valid_mask: bool = False) -> None:
        super().__init__()
        self.alpha, self.beta, self.ensemble_on_valid_mask = alpha, beta, ensemble_on_valid_mask

    def forward(self, in_logits: Tensor, out_logits: Tensor, seen_mask: Tensor,
                valid_mask: Optional[Tensor] = None) -> Tensor:
        return geometric_ensemble(in_logits, out_logits, seen_mask, self.alpha, self.beta,
                                  valid_mask if self.ensemble_on_valid_mask else None)


def category_overlap_mask(test_synonyms: Sequence[Union[str, Sequence[str]]],
                          train_synonyms: Sequence[Union[str, Sequence[str]]]) -> Tensor:
    """Bool[C_test]: a test class is *seen* if any of its synonyms is a training synonym.

    Comparison is after ``strip().lower()``; string entries are split on ``,`` like FC-CLIP's
    ``split_labels``. Decides α (seen) vs β (unseen) in :func:`geometric_ensemble`.
    """
    def split(entry: Union[str, Sequence[str]]) -> Sequence[str]:
        return entry.replace(', ', ',').split(',') if isinstance(entry, str) else entry

    train = {s.strip().lower() for entry in train_synonyms for s in split(entry)}
    return torch.tensor([any(s.strip().lower() in train for s in split(entry)) for entry in test_synonyms],
                        dtype=torch.bool)
