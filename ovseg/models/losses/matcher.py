"""Hungarian matching between predicted queries and ground-truth segments (Mask2Former costs)."""
from __future__ import annotations

from typing import Dict, List, Sequence, Tuple

import torch
import torch.nn.functional as F
from scipy.optimize import linear_sum_assignment
from torch import Tensor, nn

from ovseg.models.utils.point_sample import point_sample
from ovseg.registry import MODELS


def batch_dice_cost(inputs: Tensor, targets: Tensor) -> Tensor:
    """Pairwise dice loss between Q mask logits and N binary targets, both sampled at P points → Q×N."""
    inputs = inputs.sigmoid()
    numerator = 2 * torch.einsum('nc,mc->nm', inputs, targets)
    denominator = inputs.sum(-1)[:, None] + targets.sum(-1)[None, :]
    return 1 - (numerator + 1) / (denominator + 1)


def batch_sigmoid_ce_cost(inputs: Tensor, targets: Tensor) -> Tensor:
    """Pairwise mean binary cross-entropy between Q logits and N targets at P points → Q×N."""
    p = inputs.shape[1]
    pos = F.softplus(-inputs)  # = BCE(x, 1)
    neg = F.softplus(inputs)   # = BCE(x, 0)
    return (torch.einsum('nc,mc->nm', pos, targets) + torch.einsum('nc,mc->nm', neg, 1 - targets)) / p


@MODELS.register_module()
class HungarianMatcher(nn.Module):
    """One-to-one assignment minimising ``w_class·(−p_class) + w_mask·BCE + w_dice·dice``.

    Mask costs are computed on ``num_points`` random points shared by predictions and targets (the same
    points for every pair), as Mask2Former does to keep memory independent of the image size; images are
    matched one at a time and targets are point-sampled ``target_chunk`` masks at a time.
    """

    def __init__(self, cost_class: float = 2.0, cost_mask: float = 5.0, cost_dice: float = 5.0,
                 num_points: int = 12544, target_chunk: int = 32) -> None:
        super().__init__()
        self.target_chunk = max(int(target_chunk), 1)
        if cost_class == 0 and cost_mask == 0 and cost_dice == 0:
            raise ValueError('all matcher costs are 0')
        self.cost_class, self.cost_mask, self.cost_dice = cost_class, cost_mask, cost_dice
        self.num_points = num_points

    @torch.no_grad()
    def forward(self, outputs: Dict[str, Tensor], targets: Sequence[Dict[str, Tensor]]
                ) -> List[Tuple[Tensor, Tensor]]:
        """→ per image (query indices, target indices), both LongTensor[min(Q, N)]."""
        bs, num_queries = outputs['pred_logits'].shape[:2]
        indices = []
        for b in range(bs):
            tgt_ids = targets[b]['labels']
            if tgt_ids.numel() == 0:
                empty = torch.empty(0, dtype=torch.int64)
                indices.append((empty, empty.clone()))
                continue
            out_prob = outputs['pred_logits'][b].float().softmax(-1)
            cost_class = -out_prob[:, tgt_ids]
            out_mask = outputs['pred_masks'][b]
            coords = torch.rand(1, self.num_points, 2, device=out_mask.device)
            # the same points for every mask: sample masks as channels of one image. Full-resolution binary
            # targets are converted to float a chunk at a time, so peak memory does not grow with their count.
            tgt_pts = torch.cat([
                point_sample(chunk.to(device=out_mask.device, dtype=out_mask.dtype)[None], coords,
                             align_corners=False)[0]
                for chunk in targets[b]['masks'].split(self.target_chunk)])
            out_pts = point_sample(out_mask[None], coords, align_corners=False)[0]
            with torch.autocast(device_type=out_mask.device.type, enabled=False):
                out_pts, tgt_pts = out_pts.float(), tgt_pts.float()
                cost = (self.cost_mask * batch_sigmoid_ce_cost(out_pts, tgt_pts)
                        + self.cost_class * cost_class
                        + self.cost_dice * batch_dice_cost(out_pts, tgt_pts))
            cost = cost.reshape(num_queries, -1).cpu()
            if not torch.isfinite(cost).all():
                raise FloatingPointError('matching cost has NaN/inf: the predictions diverged')
            row, col = linear_sum_assignment(cost.numpy())
            indices.append((torch.as_tensor(row, dtype=torch.int64), torch.as_tensor(col, dtype=torch.int64)))
        return indices
