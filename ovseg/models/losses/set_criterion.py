"""Mask2Former set criterion: CE over classes (+void), point-sampled mask BCE and dice, deep supervision."""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor, nn

from ovseg.models.utils.point_sample import (calculate_uncertainty, get_uncertain_point_coords_with_randomness,
                                             point_sample)
from ovseg.registry import MODELS

DEFAULT_WEIGHTS = dict(loss_ce=2.0, loss_mask=5.0, loss_dice=5.0)  # maskformer2_R50_bs16_50ep.yaml


def dice_loss(inputs: Tensor, targets: Tensor, num_masks: float) -> Tensor:
    """Smoothed (+1) dice of M logit rows vs M target rows at P points, summed and divided by ``num_masks``."""
    inputs = inputs.sigmoid().flatten(1)
    numerator = 2 * (inputs * targets).sum(-1)
    denominator = inputs.sum(-1) + targets.sum(-1)
    return (1 - (numerator + 1) / (denominator + 1)).sum() / num_masks


def sigmoid_ce_loss(inputs: Tensor, targets: Tensor, num_masks: float) -> Tensor:
    """Per-mask mean BCE over the P points, summed over masks and divided by ``num_masks``."""
    loss = F.binary_cross_entropy_with_logits(inputs, targets, reduction='none')
    return loss.mean(1).sum() / num_masks


def pad_target_masks(targets: Sequence[Dict[str, Tensor]]) -> List[Dict[str, Tensor]]:
    """Zero-pad every image's masks (bottom/right) to the largest H×W in the batch.

    Point coordinates are normalised to the padded prediction, so a target must cover the same padded canvas
    (detectron2's ``nested_tensor_from_tensor_list``). Targets already of one size are returned unchanged.
    """
    sizes = {tuple(t['masks'].shape[-2:]) for t in targets}
    if len(sizes) <= 1:
        return list(targets)
    h = max(s[0] for s in sizes)
    w = max(s[1] for s in sizes)
    out = []
    for t in targets:
        m = t['masks']
        if tuple(m.shape[-2:]) != (h, w):
            padded = m.new_zeros((m.shape[0], h, w))
            padded[:, :m.shape[1], :m.shape[2]] = m
            t = dict(t, masks=padded)
        out.append(t)
    return out


@MODELS.register_module()
class SetCriterion(nn.Module):
    """Losses of a set-prediction segmenter after Hungarian matching.

    The class count follows the logits (C+1 with void last), so one criterion serves any vocabulary.
    ``num_masks`` is averaged over DDP ranks (clamped at 1), as in Mask2Former.

    Args:
        matcher: HungarianMatcher config.
        loss_weights: weights of ``loss_ce``, ``loss_mask``, ``loss_dice`` (2 / 5 / 5).
        eos_coef: CE weight of the void ("no object") class (0.1).
        deep_supervision: add the losses of every ``aux_outputs`` entry as ``d{i}.loss_*``.
        num_points / oversample_ratio / importance_sample_ratio: 12544 / 3.0 / 0.75.
        target_chunk: matched target masks converted to float and point-sampled this many at a time.
    """

    def __init__(self, matcher: dict | nn.Module, loss_weights: Optional[Dict[str, float]] = None,
                 eos_coef: float = 0.1, deep_supervision: bool = True, num_points: int = 12544,
                 oversample_ratio: float = 3.0, importance_sample_ratio: float = 0.75,
                 target_chunk: int = 32) -> None:
        super().__init__()
        self.target_chunk = max(int(target_chunk), 1)
        self.matcher = MODELS.build(matcher) if isinstance(matcher, dict) else matcher
        self.loss_weights = dict(DEFAULT_WEIGHTS if loss_weights is None else loss_weights)
        unknown = set(self.loss_weights) - set(DEFAULT_WEIGHTS)
        if unknown:
            raise KeyError(f'unknown loss weights {sorted(unknown)}; expected {sorted(DEFAULT_WEIGHTS)}')
        self.eos_coef, self.deep_supervision = eos_coef, deep_supervision
        self.num_points, self.oversample_ratio = num_points, oversample_ratio
        self.importance_sample_ratio = importance_sample_ratio

    # ------------------------------------------------------------------ single prediction set
    def loss_labels(self, logits: Tensor, targets, indices) -> Tensor:
        """CE over C+1 classes; unmatched queries learn void, whose weight is ``eos_coef``."""
        num_classes = logits.shape[-1] - 1
        empty_weight = torch.ones(num_classes + 1, device=logits.device, dtype=torch.float32)
        empty_weight[-1] = self.eos_coef
        batch_idx, src_idx = self._src_permutation(indices)
        target_classes = torch.full(logits.shape[:2], num_classes, dtype=torch.int64, device=logits.device)
        if batch_idx.numel():
            target_classes[batch_idx, src_idx] = torch.cat(
                [t['labels'][j] for t, (_, j) in zip(targets, indices)]).to(logits.device)
        return F.cross_entropy(logits.float().transpose(1, 2), target_classes, empty_weight)

    def loss_masks(self, pred_masks: Tensor, targets, indices, num_masks: float) -> Tuple[Tensor, Tensor]:
        """BCE and dice of matched masks at uncertainty-sampled points (memory independent of image size)."""
        batch_idx, src_idx = self._src_permutation(indices)
        if batch_idx.numel() == 0:  # no target in the whole batch: keep the graph, contribute 0
            zero = pred_masks.sum() * 0.0
            return zero, zero.clone()
        src = pred_masks[batch_idx, src_idx][:, None]
        tgt = torch.cat([t['masks'][j.to(t['masks'].device)] for t, (_, j) in zip(targets, indices)])
        with torch.no_grad():
            coords = get_uncertain_point_coords_with_randomness(
                src, calculate_uncertainty, self.num_points, self.oversample_ratio, self.importance_sample_ratio)
            # binary full-resolution targets become float a chunk at a time (bounded peak memory)
            point_labels = torch.cat([
                point_sample(t.to(device=src.device, dtype=src.dtype)[:, None], c, align_corners=False).squeeze(1)
                for t, c in zip(tgt.split(self.target_chunk), coords.split(self.target_chunk))])
        point_logits = point_sample(src, coords, align_corners=False).squeeze(1)
        return (sigmoid_ce_loss(point_logits.float(), point_labels.float(), num_masks),
                dice_loss(point_logits.float(), point_labels.float(), num_masks))

    @staticmethod
    def _src_permutation(indices) -> Tuple[Tensor, Tensor]:
        batch_idx = torch.cat([torch.full_like(src, i) for i, (src, _) in enumerate(indices)])
        src_idx = torch.cat([src for src, _ in indices])
        return batch_idx, src_idx

    def _losses_of(self, outputs: Dict[str, Tensor], targets, num_masks: float) -> Dict[str, Tensor]:
        indices = self.matcher(outputs, targets)
        loss_mask, loss_dice = self.loss_masks(outputs['pred_masks'], targets, indices, num_masks)
        return dict(loss_ce=self.loss_labels(outputs['pred_logits'], targets, indices),
                    loss_mask=loss_mask, loss_dice=loss_dice)

    # ------------------------------------------------------------------ public
    def num_masks(self, targets: Sequence[Dict[str, Tensor]], device) -> float:
        """Targets per rank averaged over DDP ranks, clamped at 1, so every rank normalises alike."""
        n = torch.as_tensor([float(sum(len(t['labels']) for t in targets))], device=device)
        if dist.is_available() and dist.is_initialized():
            dist.all_reduce(n)
            n = n / dist.get_world_size()
        return max(float(n.item()), 1.0)

    def forward(self, outputs: Dict, targets: List[Dict[str, Tensor]]) -> Dict[str, Tensor]:
        """targets: per image ``labels`` Long[N] and ``masks`` Bool/Float[N, H, W] (batch-padded).

        Returns weighted losses: ``loss_ce``, ``loss_mask``, ``loss_dice`` and ``d{i}.loss_*`` per aux step.
        """
        targets = pad_target_masks(targets)
        num_masks = self.num_masks(targets, outputs['pred_logits'].device)
        raw = {'': self._losses_of(outputs, targets, num_masks)}
        if self.deep_supervision:
            for i, aux in enumerate(outputs.get('aux_outputs', [])):
                raw[f'd{i}.'] = self._losses_of(aux, targets, num_masks)
        return {prefix + k: v * self.loss_weights[k] for prefix, group in raw.items() for k, v in group.items()}


@MODELS.register_module()
class Mask2FormerCriterion(SetCriterion):
    """Alias of :class:`SetCriterion` under the name used by Mask2Former-style configs."""
