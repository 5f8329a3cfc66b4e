"""Set criterion of mask-classification models: Hungarian matching, then a list of named loss terms.

Each prediction set (the final one and, with deep supervision, every ``aux_outputs`` entry) is matched to the
ground truth once; every loss term then reads the same :class:`MatchedPredictions` — the matched pairs, the
normalisation ``num_masks`` and, computed once and shared, the matched masks sampled at uncertainty-chosen points.
Terms are registered modules (``ClassCELoss``, ``MaskBCELoss``, ``MaskDiceLoss`` reproduce Mask2Former; a project
adds grounding, IoU or distillation terms by registering its own) listed in the config with their weights::

    criterion = dict(type='SetCriterion', matcher=dict(type='HungarianMatcher', ...),
                     losses=[dict(type='ClassCELoss', loss_weight=2.0, eos_coef=0.1),
                             dict(type='MaskBCELoss', loss_weight=5.0),
                             dict(type='MaskDiceLoss', loss_weight=5.0)])

Loss keys are ``<name>`` for the final prediction and ``d{i}.<name>`` for the i-th auxiliary one.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor, nn

from ovseg.models.utils.point_sample import (
    calculate_uncertainty,
    get_uncertain_point_coords_with_randomness,
    point_sample,
)
from ovseg.registry import MODELS

Targets = Sequence[dict[str, Tensor]]
Indices = list[tuple[Tensor, Tensor]]

#: Mask2Former's loss terms and weights (maskformer2_R50_bs16_50ep.yaml: CLASS_WEIGHT 2.0, NO_OBJECT_WEIGHT 0.1,
#: MASK_WEIGHT 5.0, DICE_WEIGHT 5.0).
MASK2FORMER_LOSSES = (dict(type='ClassCELoss', loss_weight=2.0, eos_coef=0.1),
                      dict(type='MaskBCELoss', loss_weight=5.0),
                      dict(type='MaskDiceLoss', loss_weight=5.0))


def pad_target_masks(targets: Targets) -> list[dict[str, Tensor]]:
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


class MatchedPredictions:
    """One prediction set matched to the targets: what every loss term reads.

    Attributes:
        outputs: the prediction set (``pred_logits`` B×Q×(C+1), ``pred_masks`` B×Q×H×W, anything else a model adds).
        targets: per image ``labels`` Long[N] and ``masks`` Bool/Float[N, H, W] (batch-padded), plus any extras.
        indices: per image (query indices, target indices) from the matcher.
        num_masks: targets per rank averaged over DDP ranks (clamped at 1), the normaliser of mask terms.
        aux_index: ``None`` for the final prediction, ``i`` for ``aux_outputs[i]``.
    """

    def __init__(self, outputs: dict[str, Any], targets: Targets, indices: Indices, num_masks: float,
                 sampling: dict[str, Any], aux_index: int | None = None) -> None:
        self.outputs, self.targets, self.indices = outputs, targets, indices
        self.num_masks, self.aux_index = num_masks, aux_index
        self._sampling = sampling
        self._points: tuple[Tensor, Tensor] | None = None

    def src_permutation(self) -> tuple[Tensor, Tensor]:
        """(batch index, query index) of every matched prediction, image by image."""
        batch_idx = torch.cat([torch.full_like(src, i) for i, (src, _) in enumerate(self.indices)])
        src_idx = torch.cat([src for src, _ in self.indices])
        return batch_idx, src_idx

    @property
    def num_matched(self) -> int:
        return sum(int(src.numel()) for src, _ in self.indices)

    def matched_target_classes(self, num_classes: int, device: torch.device) -> Tensor:
        """B×Q class targets: the matched target's label, ``num_classes`` (void) for unmatched queries."""
        batch, queries = self.outputs['pred_logits'].shape[:2]
        target_classes = torch.full((batch, queries), num_classes, dtype=torch.int64, device=device)
        batch_idx, src_idx = self.src_permutation()
        if batch_idx.numel():
            target_classes[batch_idx, src_idx] = torch.cat(
                [t['labels'][j] for t, (_, j) in zip(self.targets, self.indices)]).to(device)
        return target_classes

    def point_logits_and_labels(self) -> tuple[Tensor, Tensor]:
        """Matched mask logits and target masks at the same uncertainty-sampled points → (M×P, M×P), cached.

        Mask2Former's memory-efficient mask losses: ``num_points`` points per matched mask, of which
        ``importance_sample_ratio`` are the most uncertain of ``oversample_ratio·num_points`` random candidates.
        Binary full-resolution targets become float a chunk at a time (bounded peak memory).
        """
        if self._points is None:
            cfg = self._sampling
            batch_idx, src_idx = self.src_permutation()
            src = self.outputs['pred_masks'][batch_idx, src_idx][:, None]
            tgt = torch.cat([t['masks'][j.to(t['masks'].device)] for t, (_, j) in zip(self.targets, self.indices)])
            chunk = cfg['target_chunk']
            with torch.no_grad():
                coords = get_uncertain_point_coords_with_randomness(
                    src, calculate_uncertainty, cfg['num_points'], cfg['oversample_ratio'],
                    cfg['importance_sample_ratio'])
                labels = torch.cat([
                    point_sample(t.to(device=src.device, dtype=src.dtype)[:, None], c, align_corners=False).squeeze(1)
                    for t, c in zip(tgt.split(chunk), coords.split(chunk))])
            logits = point_sample(src, coords, align_corners=False).squeeze(1)
            self._points = (logits.float(), labels.float())
        return self._points


@MODELS.register_module()
class SetCriterion(nn.Module):
    """Hungarian matching + named loss terms, with deep supervision.

    The class count follows the logits (C+1 with void last), so one criterion serves any vocabulary.

    Args:
        matcher: HungarianMatcher config (or module).
        losses: loss-term configs (or modules), each with ``name`` and ``loss_weight``; default: Mask2Former's
            CE (2.0, no-object weight 0.1) + mask BCE (5.0) + dice (5.0).
        deep_supervision: apply the terms to every ``aux_outputs`` entry too (keys ``d{i}.<name>``).
        num_points / oversample_ratio / importance_sample_ratio: point sampling of the mask terms
            (12544 / 3.0 / 0.75, Mask2Former TRAIN_NUM_POINTS / OVERSAMPLE_RATIO / IMPORTANCE_SAMPLE_RATIO).
        target_chunk: matched target masks converted to float and point-sampled this many at a time.
    """

    def __init__(self, matcher: dict | nn.Module, losses: Sequence[dict | nn.Module] | None = None,
                 deep_supervision: bool = True, num_points: int = 12544, oversample_ratio: float = 3.0,
                 importance_sample_ratio: float = 0.75, target_chunk: int = 32) -> None:
        super().__init__()
        self.matcher = MODELS.build(matcher) if isinstance(matcher, dict) else matcher
        terms = [MODELS.build(dict(t)) if isinstance(t, dict) else t for t in (losses or MASK2FORMER_LOSSES)]
        names = [t.name for t in terms]
        if len(set(names)) != len(names):
            raise ValueError(f'SetCriterion: loss names must be unique, got {names}')
        self.losses = nn.ModuleList(terms)
        self.deep_supervision = deep_supervision
        if oversample_ratio < 1 or not 0 <= importance_sample_ratio <= 1:
            raise ValueError('need oversample_ratio >= 1 and 0 <= importance_sample_ratio <= 1')
        self.sampling = dict(num_points=int(num_points), oversample_ratio=float(oversample_ratio),
                             importance_sample_ratio=float(importance_sample_ratio),
                             target_chunk=max(int(target_chunk), 1))

    @property
    def loss_weights(self) -> dict[str, float]:
        return {t.name: float(t.loss_weight) for t in self.losses}

    def num_masks(self, targets: Targets, device: torch.device) -> float:
        """Targets per rank averaged over DDP ranks, clamped at 1, so every rank normalises alike."""
        n = torch.as_tensor([float(sum(len(t['labels']) for t in targets))], device=device)
        if dist.is_available() and dist.is_initialized():
            dist.all_reduce(n)
            n = n / dist.get_world_size()
        return max(float(n.item()), 1.0)

    def match(self, outputs: dict[str, Any], targets: Targets, num_masks: float,
              aux_index: int | None = None) -> MatchedPredictions:
        return MatchedPredictions(outputs, targets, self.matcher(outputs, targets), num_masks, self.sampling,
                                  aux_index)

    def _terms_of(self, matched: MatchedPredictions, prefix: str) -> dict[str, Tensor]:
        out: dict[str, Tensor] = {}
        for term in self.losses:
            if matched.aux_index is not None and not term.apply_to_aux:
                continue
            value = term(matched)
            if isinstance(value, dict):  # already weighted; keys without 'loss' are logged, not optimized
                out.update({prefix + k: v for k, v in value.items()})
            else:
                out[prefix + term.name] = value * term.loss_weight
        return out

    def forward(self, outputs: dict[str, Any], targets: Targets) -> dict[str, Tensor]:
        """targets: per image ``labels`` Long[N] and ``masks`` Bool/Float[N, H, W].

        Returns the weighted losses: ``<name>`` per term and ``d{i}.<name>`` per auxiliary prediction.
        """
        targets = pad_target_masks(targets)
        num_masks = self.num_masks(targets, outputs['pred_logits'].device)
        losses = self._terms_of(self.match(outputs, targets, num_masks), '')
        if self.deep_supervision:
            for i, aux in enumerate(outputs.get('aux_outputs', [])):
                losses.update(self._terms_of(self.match(aux, targets, num_masks, i), f'd{i}.'))
        return losses
