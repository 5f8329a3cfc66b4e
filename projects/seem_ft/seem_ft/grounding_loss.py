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
from scipy.optimize import linear_sum_assignment
from torch import Tensor

from ovseg.models.losses import SetLossTerm, batch_dice_cost, batch_sigmoid_ce_cost, dice_loss, sigmoid_ce_loss
from ovseg.models.losses.set_criterion import MatchedPredictions
from ovseg.models.utils.point_sample import (
    calculate_uncertainty,
    get_uncertain_point_coords_with_randomness,
    point_sample,
)
from ovseg.registry import MODELS

__all__ = ['SEEMGroundingLoss', 'normalize_emb']

_EPS = 1e-7


def normalize_emb(x: Tensor) -> Tensor:
    """SEEM's ``x / (‖x‖ + 1e-7)``."""
    return x / (x.norm(dim=-1, keepdim=True) + _EPS)


@MODELS.register_module()
class SEEMGroundingLoss(SetLossTerm):
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
    default_weight = 1.0

    def __init__(self, ce_weight: float = 0.4, bce_weight: float = 1.0, dice_weight: float = 1.0,
                 text_weight: float = 2.0, class_weight: float = 0.5, cost_class: float = 2.0,
                 cost_mask: float = 5.0, cost_dice: float = 5.0, match_points: int = 12544,
                 num_points: int = 12544, oversample_ratio: float = 3.0, importance_sample_ratio: float = 0.75,
                 name: str | None = None, apply_to_aux: bool = True) -> None:
        super().__init__(1.0, name, apply_to_aux)
        self.weights = dict(ce=float(ce_weight), bce=float(bce_weight), dice=float(dice_weight))
        self.task_weights = dict(text=float(text_weight), **{'class': float(class_weight)})
        self.costs = dict(cls=float(cost_class), mask=float(cost_mask), dice=float(cost_dice))
        self.match_points = int(match_points)
        self.sampling = dict(num_points=int(num_points), oversample_ratio=float(oversample_ratio),
                             importance_sample_ratio=float(importance_sample_ratio))

    @property
    def loss_names(self) -> dict[str, float]:
        """Key → weight of what this term returns."""
        return {f'{self.name}_{k}': w for k, w in self.weights.items()}

    def extra_repr(self) -> str:
        return f'{super().extra_repr()}, weights={self.weights}, task_weights={self.task_weights}'

    # ------------------------------------------------------------------ matching
    @torch.no_grad()
    def match(self, logits: Tensor, masks: Tensor, targets: Tensor) -> tuple[Tensor, Tensor]:
        """SEEM ``grounding_forward`` for one image: logits Qg×G, masks Qg×H×W, targets G×H×W."""
        coords = torch.rand(1, self.match_points, 2, device=masks.device)
        out = point_sample(masks[None].float(), coords, align_corners=False)[0]  # Qg×P
        tgt = point_sample(targets[None].to(device=masks.device, dtype=torch.float32), coords,
                           align_corners=False)[0]
        with torch.autocast(device_type=masks.device.type, enabled=False):
            cost = (self.costs['mask'] * batch_sigmoid_ce_cost(out.float(), tgt)
                    + self.costs['cls'] * -logits.float().softmax(dim=0)
                    + self.costs['dice'] * batch_dice_cost(out.float(), tgt)).cpu()
        if not torch.isfinite(cost).all():
            raise FloatingPointError('grounding matching cost has NaN/inf: the predictions diverged')
        row, col = linear_sum_assignment(cost.numpy())
        return torch.as_tensor(row, dtype=torch.int64), torch.as_tensor(col, dtype=torch.int64)

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
        src_masks = torch.cat(src)[:, None]
        tgt_masks = torch.cat(tgt).to(device=src_masks.device, dtype=src_masks.dtype)[:, None]
        with torch.no_grad():
            coords = get_uncertain_point_coords_with_randomness(
                src_masks, calculate_uncertainty, self.sampling['num_points'], self.sampling['oversample_ratio'],
                self.sampling['importance_sample_ratio']).to(src_masks.dtype)
            labels = point_sample(tgt_masks, coords, align_corners=False).squeeze(1)
        point_logits = point_sample(src_masks, coords, align_corners=False).squeeze(1)
        n = float(len(src_masks))
        return {f'{self.name}_bce': self.weights['bce'] * sigmoid_ce_loss(point_logits.float(), labels.float(), n),
                f'{self.name}_dice': self.weights['dice'] * dice_loss(point_logits.float(), labels.float(), n),
                f'{self.name}_ce': self.weights['ce'] * torch.stack(ce_terms).sum() / len(images)}
