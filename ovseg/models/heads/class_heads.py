"""Class heads of the masked-attention decoder: how a query becomes class scores.

The decoder scores the queries of all its predictions in one call, ``head(query_feats B×N×C, region_feats,
**class_inputs)`` → B×N×(K+1) logits with the no-object ("void") column last. A head that also looks at the
mask features under each query's mask defines ``region_weights(mask_logits B×Q×h×w, (H, W)) -> B×Q×(H·W)``
(no gradient); the decoder calls it per prediction and pools ``mask_features`` with all weights in one product
into ``region_feats`` B×N×C (None for heads without it).

* :class:`LinearClassHead` — Mask2Former: a fixed label set, ``class_embed = Linear(C, K+1)``.
* :class:`InVocabClassifier` — FC-CLIP: the query plus its mask-pooled pixel feature is projected into the CLIP
  embedding space and compared with a text classifier (class names → embeddings, void row last) under a learnable
  temperature; the label set is whatever vocabulary the text classifier encodes.

Parameter names mirror the official modules (``class_embed``, ``_mask_pooling_proj``, ``logit_scale``).
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ovseg.models.layers import MLP, mask_pooling_weights
from ovseg.registry import MODELS

LOGIT_SCALE_MAX = 100.0  # FC-CLIP / CLIP clamp of exp(logit_scale)


def get_classification_logits(x: Tensor, text_classifier: Tensor, logit_scale: Tensor,
                              num_templates: Sequence[int]) -> Tensor:
    """Cosine-similarity logits with the max over each class's synonyms; the last column is void.

    Args:
        x: B×Q×D (any leading dims) region embeddings, normalized here.
        text_classifier: (S+1)×D, L2-normalized, void row last.
        logit_scale: **log** temperature; the scale applied is ``clamp(exp(logit_scale), max=100)``.
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


@MODELS.register_module()
class LinearClassHead(nn.Module):
    """Mask2Former's class head: one linear layer over the query, K classes + no-object.

    Args:
        hidden_dim: query width.
        num_classes: size of the fixed label set (without the no-object class).
    """

    def __init__(self, hidden_dim: int = 256, num_classes: int = 133) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.class_embed = nn.Linear(hidden_dim, num_classes + 1)

    def forward(self, query_feats: Tensor, region_feats: Tensor | None = None) -> Tensor:
        return self.class_embed(query_feats)


@MODELS.register_module()
class InVocabClassifier(nn.Module):
    """FC-CLIP's trained (in-vocabulary) class head.

    ``logits = cos(class_embed(_mask_pooling_proj(maskpool(mask_features, masks)) + query), text) · T`` with a
    learnable temperature ``T = clamp(exp(logit_scale), 100)`` initialized to 1/0.07.

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

    def region_embedding(self, pooled: Tensor, query_feats: Tensor | None = None) -> Tensor:
        """Map mask-pooled features (…×hidden, + the query if given) into the CLIP embedding space (…×embed_dim).

        The decoder adds the query; DreamMask's synthetic-real alignment embeds ground-truth regions without one.
        """
        x = self._mask_pooling_proj(pooled)
        return self.class_embed(x if query_feats is None else x + query_feats)

    def region_weights(self, mask_logits: Tensor, size: tuple[int, int]) -> Tensor:
        """FC-CLIP's ``MaskPooling`` of the mask features: average inside each binarized (``> 0``) query mask."""
        return mask_pooling_weights(mask_logits, size)

    def forward(self, query_feats: Tensor, region_feats: Tensor, text_classifier: Tensor,
                num_templates: Sequence[int]) -> Tensor:
        """B×N×hidden queries + their B×N×hidden region features → B×N×(C+1) logits (void last);
        ``text_classifier`` is (S+1)×D normalized, void row last."""
        emb = self.region_embedding(region_feats, query_feats)
        return get_classification_logits(emb, text_classifier, self.logit_scale, num_templates)
