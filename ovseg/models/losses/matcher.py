"""Hungarian matching between predicted queries and ground-truth segments (Mask2Former costs)."""
from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from scipy.optimize import linear_sum_assignment
from torch import Tensor, nn

from ovseg.models.utils.point_sample import point_sample
from ovseg.registry import MODELS


def batch_dice_cost(inputs: Tensor, targets: Tensor) -> Tensor:
    """Pairwise dice loss between Q mask logits and N binary targets, both sampled at P points → Q×N
    (``...×Q×P`` and ``...×N×P`` batched over leading dimensions → ``...×Q×N``)."""
    inputs = inputs.sigmoid()
    numerator = 2 * (inputs @ targets.transpose(-1, -2))
    denominator = inputs.sum(-1)[..., :, None] + targets.sum(-1)[..., None, :]
    return 1 - (numerator + 1) / (denominator + 1)


def batch_sigmoid_ce_cost(inputs: Tensor, targets: Tensor) -> Tensor:
    """Pairwise mean binary cross-entropy between Q logits and N targets at P points → Q×N (batched like
    :func:`batch_dice_cost`).

    ``BCE(x, t) = softplus(x) − x·t``, so the pairwise sum over points is one matrix product plus a row term
    (Mask2Former writes the same sum as two products of ``softplus(−x)`` and ``softplus(x)``).
    """
    p = inputs.shape[-1]
    return (F.softplus(inputs).sum(-1, keepdim=True) - inputs @ targets.transpose(-1, -2)) / p


@MODELS.register_module()
class HungarianMatcher(nn.Module):
    """One-to-one assignment minimising ``w_class·(−p_class) + w_mask·BCE + w_dice·dice``.

    Mask costs are computed on ``num_points`` random points shared by predictions and targets (the same points
    for every pair of an image), as Mask2Former does to keep memory independent of the image size. The points of
    all images are drawn at once in image order (the same random stream as one draw per image) and sampled in one
    call per set; binary full-resolution targets are converted to float ``target_chunk`` masks at a time.
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
    def forward(self, outputs: dict[str, Tensor], targets: Sequence[dict[str, Tensor]]
                ) -> list[tuple[Tensor, Tensor]]:
        """→ per image (query indices, target indices), both LongTensor[min(Q, N)]."""
        pred_logits, pred_masks = outputs['pred_logits'], outputs['pred_masks']
        empty = torch.empty(0, dtype=torch.int64)
        indices = [(empty, empty.clone()) for _ in targets]
        matched = [b for b, t in enumerate(targets) if t['labels'].numel()]
        if not matched:
            return indices
        device = pred_masks.device
        coords = torch.rand(len(matched), self.num_points, 2, device=device)
        out_pts = point_sample(pred_masks[matched], coords, align_corners=False)  # k×Q×P
        tgt_masks = torch.cat([targets[b]['masks'] for b in matched])
        owner = torch.cat([torch.full((targets[b]['masks'].shape[0],), i, device=device)
                           for i, b in enumerate(matched)])
        tgt_pts = torch.cat([
            point_sample(chunk.to(device=device, dtype=pred_masks.dtype)[:, None], coords[own],
                         align_corners=False)[:, 0]
            for chunk, own in zip(tgt_masks.split(self.target_chunk), owner.split(self.target_chunk))])
        probs = pred_logits[matched].float().softmax(-1)
        counts = [int(targets[b]['labels'].numel()) for b in matched]
        with torch.autocast(device_type=device.type, enabled=False):
            # all images at once, targets zero-padded to the largest count (padding columns are never read)
            tgt = torch.zeros(len(matched), max(counts), self.num_points, device=device)
            labels = torch.zeros(len(matched), max(counts), dtype=torch.long, device=device)
            start = 0
            for i, (b, n) in enumerate(zip(matched, counts)):
                tgt[i, :n] = tgt_pts[start:start + n].float()
                labels[i, :n] = targets[b]['labels'].to(device)
                start += n
            out_pts = out_pts.float()
            cost = (self.cost_mask * batch_sigmoid_ce_cost(out_pts, tgt)
                    + self.cost_class * -probs.gather(-1, labels[:, None, :].expand(-1, probs.shape[1], -1))
                    + self.cost_dice * batch_dice_cost(out_pts, tgt)).cpu()
        for i, (b, n) in enumerate(zip(matched, counts)):
            image_cost = cost[i, :, :n]
            if not torch.isfinite(image_cost).all():
                raise FloatingPointError('matching cost has NaN/inf: the predictions diverged')
            row, col = linear_sum_assignment(image_cost.numpy())
            indices[b] = (torch.as_tensor(row, dtype=torch.int64), torch.as_tensor(col, dtype=torch.int64))
        return indices
