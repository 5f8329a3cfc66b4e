"""What SEEM's grounding and spatial losses share: a Hungarian match of prompt queries to target masks on random
points, then point-sampled BCE / dice of the matched masks (SEEM v1.0 ``modules/criterion.py`` ``loss_groundings``
/ ``loss_spatials`` and ``modules/matcher.py``: the same two steps with different class scores)."""
from __future__ import annotations

import torch
from scipy.optimize import linear_sum_assignment
from torch import Tensor

from ovseg.models.losses import SetLossTerm, batch_dice_cost, batch_sigmoid_ce_cost, dice_loss, sigmoid_ce_loss
from ovseg.models.utils.point_sample import (
    calculate_uncertainty,
    get_uncertain_point_coords_with_randomness,
    point_sample,
)

__all__ = ['PromptMaskLoss']


class PromptMaskLoss(SetLossTerm):
    """Base of :class:`SEEMGroundingLoss` / :class:`SEEMSpatialLoss`: ``{name}_{ce,bce,dice}`` weights, matcher
    costs (``cost_class`` on the class probability, ``cost_mask`` / ``cost_dice`` on ``match_points`` random points)
    and the uncertainty point sampling of BCE / dice."""

    default_weight = 1.0

    def __init__(self, ce_weight: float, bce_weight: float, dice_weight: float, cost_class: float, cost_mask: float,
                 cost_dice: float, match_points: int, num_points: int, oversample_ratio: float,
                 importance_sample_ratio: float, name: str | None = None, apply_to_aux: bool = True) -> None:
        super().__init__(1.0, name, apply_to_aux)
        self.weights = dict(ce=float(ce_weight), bce=float(bce_weight), dice=float(dice_weight))
        self.costs = dict(cls=float(cost_class), mask=float(cost_mask), dice=float(cost_dice))
        self.match_points = int(match_points)
        self.sampling = dict(num_points=int(num_points), oversample_ratio=float(oversample_ratio),
                             importance_sample_ratio=float(importance_sample_ratio))

    @property
    def loss_names(self) -> dict[str, float]:
        """Key → weight of what this term returns."""
        return {f'{self.name}_{k}': w for k, w in self.weights.items()}

    def extra_repr(self) -> str:
        return f'{super().extra_repr()}, weights={self.weights}, costs={self.costs}'

    @torch.no_grad()
    def match_cost(self, class_prob: Tensor, masks: Tensor, targets: Tensor) -> Tensor:
        """CPU cost Q×G = ``cost_mask``·BCE + ``cost_class``·(−prob) + ``cost_dice``·dice, the mask terms on
        ``match_points`` random points shared by all pairs of the image."""
        coords = torch.rand(1, self.match_points, 2, device=masks.device)
        out = point_sample(masks[None].float(), coords, align_corners=False)[0]  # Q×P
        tgt = point_sample(targets[None].to(device=masks.device, dtype=torch.float32), coords,
                           align_corners=False)[0]
        with torch.autocast(device_type=masks.device.type, enabled=False):
            return (self.costs['mask'] * batch_sigmoid_ce_cost(out.float(), tgt)
                    + self.costs['cls'] * -class_prob.float()
                    + self.costs['dice'] * batch_dice_cost(out.float(), tgt)).cpu()

    @staticmethod
    def assign(cost: Tensor) -> tuple[Tensor, Tensor]:
        """Hungarian assignment of a finite CPU cost matrix → (query indices, target indices)."""
        row, col = linear_sum_assignment(cost.numpy())
        return torch.as_tensor(row, dtype=torch.int64), torch.as_tensor(col, dtype=torch.int64)

    def mask_losses(self, src_masks: Tensor, tgt_masks: Tensor) -> dict[str, Tensor]:
        """Weighted ``{name}_bce`` / ``{name}_dice`` of N×1×H×W matched mask logits against their targets at
        uncertainty-sampled points, each divided by N."""
        tgt_masks = tgt_masks.to(device=src_masks.device, dtype=src_masks.dtype)
        with torch.no_grad():
            coords = get_uncertain_point_coords_with_randomness(
                src_masks, calculate_uncertainty, self.sampling['num_points'], self.sampling['oversample_ratio'],
                self.sampling['importance_sample_ratio']).to(src_masks.dtype)
            labels = point_sample(tgt_masks, coords, align_corners=False).squeeze(1)
        point_logits = point_sample(src_masks, coords, align_corners=False).squeeze(1)
        n = float(len(src_masks))
        return {f'{self.name}_bce': self.weights['bce'] * sigmoid_ce_loss(point_logits.float(), labels.float(), n),
                f'{self.name}_dice': self.weights['dice'] * dice_loss(point_logits.float(), labels.float(), n)}
