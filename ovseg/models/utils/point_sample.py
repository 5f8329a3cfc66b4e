"""Point sampling for Mask2Former's memory-efficient mask losses (PointRend-style)."""
from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor


def point_sample(inputs: Tensor, point_coords: Tensor, **kwargs) -> Tensor:
    """Bilinearly sample N×C×H×W ``inputs`` at N×P×2 normalised (x, y) ∈ [0, 1] → N×C×P."""
    add_dim = point_coords.dim() == 3
    if add_dim:
        point_coords = point_coords.unsqueeze(2)
    out = F.grid_sample(inputs, 2.0 * point_coords - 1.0, **kwargs)
    return out.squeeze(3) if add_dim else out


def calculate_uncertainty(logits: Tensor) -> Tensor:
    """Uncertainty of binary mask logits N×1×P: −|logit| (highest at the decision boundary)."""
    return -torch.abs(logits)


def get_uncertain_point_coords_with_randomness(coarse_logits: Tensor,
                                               uncertainty_func: Callable[[Tensor], Tensor],
                                               num_points: int, oversample_ratio: float,
                                               importance_sample_ratio: float) -> Tensor:
    """Pick ``importance_sample_ratio·num_points`` most uncertain of ``oversample_ratio·num_points``
    random points, plus random ones for the rest → N×num_points×2."""
    if oversample_ratio < 1 or not 0 <= importance_sample_ratio <= 1:
        raise ValueError('need oversample_ratio >= 1 and 0 <= importance_sample_ratio <= 1')
    num_boxes = coarse_logits.shape[0]
    num_sampled = int(num_points * oversample_ratio)
    point_coords = torch.rand(num_boxes, num_sampled, 2, device=coarse_logits.device)
    point_logits = point_sample(coarse_logits, point_coords, align_corners=False)
    uncertainties = uncertainty_func(point_logits)
    num_uncertain = int(importance_sample_ratio * num_points)
    num_random = num_points - num_uncertain
    idx = torch.topk(uncertainties[:, 0, :], k=num_uncertain, dim=1)[1]
    idx = idx + num_sampled * torch.arange(num_boxes, dtype=torch.long, device=coarse_logits.device)[:, None]
    point_coords = point_coords.view(-1, 2)[idx.view(-1), :].view(num_boxes, num_uncertain, 2)
    if num_random > 0:
        point_coords = torch.cat(
            [point_coords, torch.rand(num_boxes, num_random, 2, device=coarse_logits.device)], dim=1)
    return point_coords
