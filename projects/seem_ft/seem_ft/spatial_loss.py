"""SEEM's spatial (visual-prompt) losses as a named term of the core :class:`~ovseg.models.losses.SetCriterion`.

Source: SEEM v1.0 ``modeling/modules/criterion.py`` (``loss_spatials``), ``modeling/modules/matcher.py``
(``spatial_forward``), weights from ``configs/seem/focal{l,t}_unicl_lang_v1.yaml`` (``SCLASS_WEIGHT 0.4``,
``SMASK_WEIGHT 1.0``, ``SDICE_WEIGHT 1.0``; ``COST_SPATIAL`` class 5 / mask 2 / dice 2; ``TOP_SPATIAL_LAYERS 10``:
every decoder layer; 12544 points, oversample 3, importance 0.75).

Per image with ns prompts and their ``QUERY_NUMBER`` (3) candidate queries each (``pred_smasks`` B×3ns×H×W,
``pred_smaskembs`` B×3ns×D, prompt embeddings ``pred_pspatials`` B×ns×D):

* logits ``pred_smaskembs @ pred_pspatialsᵀ`` → 3ns×ns;
* Hungarian matching of queries to prompts, each prompt allowed only its own candidates (the others cost +inf),
  cost ``5·(−softmax over queries) + 2·BCE + 2·dice`` on random points shared by the image's pairs;
* ``loss_spatial_ce``: per prompt a cross-entropy over all the image's spatial queries against the matched one,
  mean over prompts;
* ``loss_spatial_bce`` / ``loss_spatial_dice``: the matched masks at uncertainty-sampled points, divided by the
  number of matched prompts.

Prompts whose GT mask is empty (an empty prompt, a padded slot) are left out of every term, as SEEM's ``keep``.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ovseg.models.losses.set_criterion import MatchedPredictions
from ovseg.registry import MODELS

from .prompt_mask_loss import PromptMaskLoss

__all__ = ['SEEMSpatialLoss']


@MODELS.register_module()
class SEEMSpatialLoss(PromptMaskLoss):
    """Spatial CE / BCE / dice (SEEM ``loss_spatials``) → ``loss_spatial_{ce,bce,dice}`` (weighted).

    Reads ``pred_smasks``, ``pred_smaskembs``, ``pred_pspatials`` and each target's ``gt_spatial_masks``
    (Bool[ns_b, H, W], batch-padded); a prediction set without spatial outputs gives zeros.

    Args:
        ce_weight / bce_weight / dice_weight: ``SCLASS_WEIGHT`` 0.4 / ``SMASK_WEIGHT`` 1.0 / ``SDICE_WEIGHT`` 1.0.
        query_number: candidate queries per prompt (``ATTENTION_ARCH.QUERY_NUMBER`` 3; the decoder's).
        cost_class / cost_mask / cost_dice / match_points: ``COST_SPATIAL`` 5 / 2 / 2 and the matcher's points.
        num_points / oversample_ratio / importance_sample_ratio: point sampling of BCE / dice (12544 / 3 / 0.75).
    """

    default_name = 'loss_spatial'

    def __init__(self, ce_weight: float = 0.4, bce_weight: float = 1.0, dice_weight: float = 1.0,
                 query_number: int = 3, cost_class: float = 5.0, cost_mask: float = 2.0, cost_dice: float = 2.0,
                 match_points: int = 12544, num_points: int = 12544, oversample_ratio: float = 3.0,
                 importance_sample_ratio: float = 0.75, name: str | None = None, apply_to_aux: bool = True) -> None:
        super().__init__(ce_weight, bce_weight, dice_weight, cost_class, cost_mask, cost_dice, match_points,
                         num_points, oversample_ratio, importance_sample_ratio, name, apply_to_aux)
        self.query_number = int(query_number)

    @torch.no_grad()
    def match(self, logits: Tensor, masks: Tensor, targets: Tensor) -> tuple[Tensor, Tensor]:
        """SEEM ``spatial_forward`` for one image: logits 3ns×n, masks 3ns×H×W, targets n×H×W (n ≤ ns)."""
        n = targets.shape[0]
        own = torch.eye(logits.shape[0] // self.query_number, dtype=torch.bool, device=logits.device)
        own = own.repeat_interleave(self.query_number, dim=0)[:, :n]
        prob = logits.float().masked_fill(~own, float('-inf')).softmax(dim=0).nan_to_num(0.0)
        cost = self.match_cost(prob, masks, targets).masked_fill(~own.cpu(), float('inf'))
        if torch.isnan(cost).any():
            raise FloatingPointError('spatial matching cost has NaN: the predictions diverged')
        return self.assign(cost.masked_fill(torch.isinf(cost), 1e8))  # scipy rejects inf; foreign never cheaper

    def forward(self, matched: MatchedPredictions) -> dict[str, Tensor]:
        outputs, targets = matched.outputs, matched.targets
        ref = outputs.get('pred_smasks', outputs['pred_masks'])
        zero = ref.sum() * 0.0
        if 'pred_smasks' not in outputs:
            return {k: zero for k in self.loss_names}
        src, tgt, ce_terms = [], [], []
        for b, t in enumerate(targets):
            gt = t.get('gt_spatial_masks')
            if gt is None or len(gt) == 0:
                continue
            n = gt.shape[0]
            keep = gt.flatten(1).any(1).to(ref.device)
            if not keep.any():
                continue
            logits = outputs['pred_smaskembs'][b] @ outputs['pred_pspatials'][b, :n].transpose(0, 1)  # 3ns×n
            qi, pi = self.match(logits.detach(), outputs['pred_smasks'][b].detach(), gt)
            qi, pi = qi.to(ref.device), pi.to(ref.device)
            valid = keep[pi]
            qi, pi = qi[valid], pi[valid]
            ce = F.cross_entropy(logits.t()[pi].float(), qi, reduction='none')
            ce_terms.append(ce)
            src.append(outputs['pred_smasks'][b][qi])
            tgt.append(gt[pi.to(gt.device)])
        if not src:
            return {k: zero for k in self.loss_names}
        losses = self.mask_losses(torch.cat(src)[:, None], torch.cat(tgt)[:, None])
        losses[f'{self.name}_ce'] = self.weights['ce'] * torch.cat(ce_terms).mean()
        return losses
