"""Fusing the class predictions of two mask-classification models query by query (the study's "combined" runs).

Both models start from the same FC-CLIP checkpoint, so query ``q`` of one and query ``q`` of the other are the
same slot of the same decoder: fusing them per query is meaningful. Every fusion maps two B×Q×K class-score
tensors to a :class:`FusedScores`:

* ``kind='logits'``: fused logits (the criterion's cross-entropy applies the softmax);
* ``kind='probs'``: fused, possibly unnormalised probabilities. They enter the criterion (and post-processing) as
  ``log(p)``, never as logits: ``log_softmax(log p) = log(p / Σp)``, i.e. cross-entropy on the renormalised fused
  distribution, whereas feeding ``p`` itself as logits would squash every class to almost the same score.

The five fusions of the study's results table (``/work/shared/seeds/003``, "Combined FT" rows):

================================  =================================================================================
``mean_logits``                   (z1 + z2) / 2
``weighted_logits``               w1·z1 + w2·z2, default 0.6 / 0.4 (model one / model two)
``softmax_sum_threshold``         s1·[max s1 ≥ t] + s2·[max s2 ≥ t], t = 0.7: a model's distribution counts only
                                  for queries on which it is confident; a query neither is confident on gets
                                  s1 + s2
``softmax_topk``                  top-k(s1) + top-k(s2), k = 10: each distribution keeps its k largest classes
``entropy``                       s1·(1 − H1) + s2·(1 − H2) (seed 003, "The maths behind it")
================================  =================================================================================

Entropy: the seed's ``H = −Σ s log(s + 1e-9)`` is unnormalised, up to log K (≈ 3.0 for Cityscapes' 19 + void), so
``1 − H`` goes negative for uncertain queries and the "probabilities" with it. ``normalize_entropy=True`` (default)
divides H by log K so the weights stay in [0, 1]; ``False`` is the seed's formula, whose negative fused values are
clamped at ``eps`` before the log (stated: the seed's code would take the log of a negative number).
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

#: Probabilities are clamped here before the log (the seed's entropy stabiliser, 1e-9).
PROB_EPS = 1e-9


@dataclass
class FusedScores:
    scores: Tensor
    kind: str  # 'logits' | 'probs'

    def as_logits(self) -> Tensor:
        """What the criterion and post-processing read: logits, or log-probabilities for fused probabilities."""
        if self.kind == 'logits':
            return self.scores
        return torch.log(self.scores.clamp_min(PROB_EPS))


def mean_logits(z1: Tensor, z2: Tensor) -> FusedScores:
    return FusedScores((z1 + z2) / 2, 'logits')


def weighted_logits(z1: Tensor, z2: Tensor, weights: tuple[float, float] = (0.6, 0.4)) -> FusedScores:
    return FusedScores(weights[0] * z1 + weights[1] * z2, 'logits')


def softmax_sum_threshold(z1: Tensor, z2: Tensor, threshold: float = 0.7) -> FusedScores:
    s1, s2 = z1.softmax(-1), z2.softmax(-1)
    c1 = (s1.max(-1, keepdim=True).values >= threshold).to(s1.dtype)
    c2 = (s2.max(-1, keepdim=True).values >= threshold).to(s2.dtype)
    neither = (1 - c1) * (1 - c2)
    return FusedScores(s1 * (c1 + neither) + s2 * (c2 + neither), 'probs')


def _keep_topk(s: Tensor, k: int) -> Tensor:
    k = min(int(k), s.shape[-1])
    idx = s.topk(k, dim=-1).indices
    return torch.zeros_like(s).scatter(-1, idx, s.gather(-1, idx))


def softmax_topk(z1: Tensor, z2: Tensor, k: int = 10) -> FusedScores:
    return FusedScores(_keep_topk(z1.softmax(-1), k) + _keep_topk(z2.softmax(-1), k), 'probs')


def entropy(s: Tensor, normalize: bool = True) -> Tensor:
    """Shannon entropy over the last dim (keepdim), with the seed's ``+1e-9``; divided by log K if ``normalize``."""
    h = -(s * torch.log(s + PROB_EPS)).sum(-1, keepdim=True)
    return h / math.log(s.shape[-1]) if normalize else h


def entropy_weighted(z1: Tensor, z2: Tensor, normalize_entropy: bool = True) -> FusedScores:
    s1, s2 = z1.softmax(-1), z2.softmax(-1)
    return FusedScores(s1 * (1 - entropy(s1, normalize_entropy)) + s2 * (1 - entropy(s2, normalize_entropy)),
                       'probs')


FUSIONS: dict[str, Callable[..., FusedScores]] = dict(
    mean_logits=mean_logits,
    weighted_logits=weighted_logits,
    softmax_sum_threshold=softmax_sum_threshold,
    softmax_topk=softmax_topk,
    entropy=entropy_weighted,
)


def build_fusion(cfg: str | dict[str, Any]) -> Callable[[Tensor, Tensor], FusedScores]:
    """``'entropy'`` or ``dict(type='softmax_topk', k=10)`` → ``f(z1, z2) -> FusedScores``."""
    cfg = dict(type=cfg) if isinstance(cfg, str) else dict(cfg)
    name = cfg.pop('type', None)
    if name not in FUSIONS:
        raise ValueError(f'unknown fusion {name!r}; choose from {sorted(FUSIONS)}')
    fn = FUSIONS[name]
    if 'weights' in cfg:
        w = tuple(float(x) for x in cfg['weights'])
        if len(w) != 2:
            raise ValueError(f'weighted_logits needs two weights, got {cfg["weights"]!r}')
        cfg['weights'] = w

    def fuse(z1: Tensor, z2: Tensor) -> FusedScores:
        return fn(z1, z2, **cfg)

    fuse.__name__ = name
    try:  # fail at build time on a misspelt option, not at the first training step
        fuse(torch.zeros(1, 1, 3), torch.zeros(1, 1, 3))
    except TypeError as exc:
        raise ValueError(f'fusion {name!r}: bad options {sorted(cfg)} ({exc})') from None
    return fuse


def fuse_decoder_outputs(out1: dict[str, Any], out2: dict[str, Any],
                         fuse: Callable[[Tensor, Tensor], FusedScores]) -> dict[str, Any]:
    """Fused prediction set for the criterion: fused class scores (as logits / log-probabilities) and the mean of
    the two models' mask logits, for the final layer and every auxiliary layer alike (deep supervision)."""
    def one(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
        if a['pred_logits'].shape != b['pred_logits'].shape:
            raise ValueError(f'cannot fuse class scores of shapes {tuple(a["pred_logits"].shape)} and '
                             f'{tuple(b["pred_logits"].shape)}: both models need the same queries and vocabulary')
        return dict(pred_logits=fuse(a['pred_logits'], b['pred_logits']).as_logits(),
                    pred_masks=(a['pred_masks'] + b['pred_masks']) / 2)

    fused = one(out1, out2)
    aux1, aux2 = out1.get('aux_outputs') or [], out2.get('aux_outputs') or []
    if aux1 and aux2:
        fused['aux_outputs'] = [one(a, b) for a, b in zip(aux1, aux2)]
    return fused
