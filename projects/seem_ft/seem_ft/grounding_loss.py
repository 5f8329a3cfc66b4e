"""SEEM's grounding losses as a named term of the core :class:`~ovseg.models.losses.SetCriterion`.

Source: SEEM v1.0 ``modeling/modules/criterion.py`` (``loss_groundings``), ``modeling/modules/matcher.py``
(``grounding_forward``), weights from ``configs/seem/focall_unicl_lang_v1.yaml`` (``GCLASS_WEIGHT 0.4``,
``GMASK_WEIGHT 1.0``, ``GDICE_WEIGHT 1.0``, ``GROUNDING.TEXT_WEIGHT 2.0`` / ``CLASS_WEIGHT 0.5``; the matcher costs are
the mask branch's ``CLASS_WEIGHT 2`` / ``MASK_WEIGHT 5`` / ``DICE_WEIGHT 5``; ``TRAIN_NUM_POINTS 12544``,
``OVERSAMPLE_RATIO 3``, ``IMPORTANCE_SAMPLE_RATIO 0.75``).

Per image with G sentences and the grounding queries' outputs (``pred_gmasks`` B×Qg×H×W, ``pred_gtexts``
B×Qg×D):

* scores ``vl_similarity(normalize(pred_gtexts), normalize(sentence embeddings))`` → Qg×G
  (``exp(logit_scale).clamp(max=100) · v @ tᵀ``, the language encoder's ``vl_similarity``);
* Hungarian matching of queries to sentences with cost ``2·(−softmax over queries) + 5·BCE + 5·dice`` on
  ``num_points`` random points shared by all pairs of the image;
* ``loss_grounding_bce`` / ``loss_grounding_dice``: the matched masks at uncertainty-sampled points, summed and
  divided by the number of matched masks in the batch;
* ``loss_grounding_ce``: per sentence a cross-entropy over the queries (softmax over queries) against the matched
  query, the targets of sentences with the same ``hash`` (same object) shared, mean over sentences, times the task
  weight (``text`` 2.0 for sentence annotations, ``class`` 0.5 for class-name groundings), averaged over images.

Difference: SEEM returns zero grounding losses for the whole batch when any image has no grounding; here an image
without groundings is skipped and the others still count (all-zero only when none has one).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ovseg.models.losses.set_criterion import MatchedPredictions
from ovseg.registry import MODELS

from .prompt_mask_loss import PromptMaskLoss

__all__ = ['SEEMGroundingLoss', 'normalize_emb']

_EPS = 1e-7


def normalize_emb(x: Tensor) -> Tensor:
    """SEEM's ``x / (‖x‖ + 1e-7)``."""
    return x / (x.norm(dim=-1, keepdim=True) + _EPS)


@MODELS.register_module()
class SEEMGroundingLoss(PromptMaskLoss):
    """Grounding CE / BCE / dice (SEEM ``loss_groundings``) → ``loss_grounding_{ce,bce,dice}`` (weighted).

    Reads from the prediction set ``pred_gmasks``, ``pred_gtexts`` and ``grounding_similarity`` (the language
    encoder's ``vl_similarity``), and from each target ``grounding_masks`` (G×H×W, batch-padded),
    ``grounding_class_embs`` (G×D sentence embeddings), optional ``grounding_hash`` (G ints, same object = same
    hash) and ``grounding_task`` ('text' or 'class'). A prediction set without grounding outputs gives zeros.

    Args:
        ce_weight / bce_weight / dice_weight: ``GCLASS_WEIGHT`` 0.4 / ``GMASK_WEIGHT`` 1.0 / ``GDICE_WEIGHT`` 1.0.
        text_weight / class_weight: CE factor for sentence / class-name groundings (2.0 / 0.5).
        cost_class / cost_mask / cost_dice / match_points: matcher costs and points (2 / 5 / 5 / 12544).
        num_points / oversample_ratio / importance_sample_ratio: point sampling of BCE / dice (12544 / 3 / 0.75).
    """

    default_name = 'loss_grounding'

    def __init__(self, ce_weight: float = 0.4, bce_weight: float = 1.0, dice_weight: float = 1.0,
                 text_weight: float = 2.0, class_weight: float = 0.5, cost_class: float = 2.0,
                 cost_mask: float = 5.0, cost_dice: float = 5.0, match_points: int = 12544,
                 num_points: int = 12544, oversample_ratio: float = 3.0, importance_sample_ratio: float = 0.75,
                 name: str | None = None, apply_to_aux: bool = True) -> None:
        super().__init__(ce_weight, bce_weight, dice_weight, cost_class, cost_mask, cost_dice, match_points,
                         num_points, oversample_ratio, importance_sample_ratio, name, apply_to_aux)
        self.task_weights = dict(text=float(text_weight), **{'class': float(class_weight)})

    def extra_repr(self) -> str:
        return f'{super().extra_repr()}, task_weights={self.task_weights}'

    @torch.no_grad()
    def match(self, logits: Tensor, masks: Tensor, targets: Tensor) -> tuple[Tensor, Tensor]:
        """SEEM ``grounding_forward`` for one image: logits Qg×G, masks Qg×H×W, targets G×H×W."""
        cost = self.match_cost(logits.float().softmax(dim=0), masks, targets)
        if not torch.isfinite(cost).all():
            raise FloatingPointError('grounding matching cost has NaN/inf: the predictions diverged')
        return self.assign(cost)

    # ------------------------------------------------------------------ loss
    def forward(self, matched: MatchedPredictions) -> dict[str, Tensor]:
        outputs, targets = matched.outputs, matched.targets
        ref = outputs.get('pred_gmasks', outputs['pred_masks'])
        zero = ref.sum() * 0.0
        images = [b for b, t in enumerate(targets)
                  if t.get('grounding_masks') is not None and len(t['grounding_masks'])]
        if 'pred_gmasks' not in outputs or not images:
            return {k: zero for k in self.loss_names}
        similarity = outputs['grounding_similarity']
        src, tgt, ce_terms = [], [], []
        for b in images:
            t = targets[b]
            v = normalize_emb(outputs['pred_gtexts'][b])
            e = normalize_emb(t['grounding_class_embs'].to(v))
            logits = similarity(v, e)  # Qg×G
            qi, gi = self.match(logits.detach(), outputs['pred_gmasks'][b].detach(), t['grounding_masks'])
            qi, gi = qi.to(ref.device), gi.to(ref.device)
            src.append(outputs['pred_gmasks'][b][qi])
            tgt.append(t['grounding_masks'][gi.to(t['grounding_masks'].device)])
            gt = torch.zeros_like(logits)
            gt[qi, gi] = 1
            g = logits.shape[1]
            hashes = t.get('grounding_hash')
            hashes = (torch.arange(g, device=ref.device) if hashes is None else
                      torch.as_tensor(hashes, device=ref.device).reshape(-1))
            share = (hashes[:, None] == hashes[None, :]).float()
            gt = gt @ (share / share.sum(-1, keepdim=True))
            task = t.get('grounding_task', 'text')
            if task not in self.task_weights:
                raise ValueError(f"grounding_task must be 'text' or 'class', got {task!r}")
            ce = torch.sum(-gt.t() * F.log_softmax(logits.t().float(), dim=-1), dim=-1).mean()
            ce_terms.append(self.task_weights[task] * ce)
        losses = self.mask_losses(torch.cat(src)[:, None], torch.cat(tgt)[:, None])
        losses[f'{self.name}_ce'] = self.weights['ce'] * torch.stack(ce_terms).sum() / len(images)
        return losses
