"""Visual prompts for SEEM's spatial (interactive) training: first-round shapes and the next simulated click.

Sources: SEEM v1.0 ``datasets/visual_sampler/{sampler,point,polygon,scribble}.py`` (``ShapeSampler``: up to
``STROKE_SAMPLER.MAX_CANDIDATE`` GT instances, one random shape each) and
``modeling/architectures/seem_model_v1.py`` (``prepare_next_spaital_mask``: the next click).

* **Shapes** (:func:`draw_prompt`). ``point`` is SEEM's: 1..``NUM_POINTS`` (20) random pixels of the mask, none
  when the mask has fewer than 10 pixels. ``polygon`` and ``scribble`` keep SEEM's idea with simpler geometry
  (ours): a filled polygon through 3..``POLYGON.MAX_POINTS`` (9) random mask pixels, sorted by angle around their
  mean (SEEM draws a smooth Bézier curve through them), and a 3-pixel-wide polyline through 2..5 random mask
  pixels (SEEM draws random curves); both are cut to the mask, so a prompt never leaves its object.
* **Next click** (:func:`next_click_prompts`). Per prompt, the false-negative (GT, not predicted, not yet clicked)
  and false-positive regions of the previous round's mask; the larger decides the click's sign; the click is the
  pixel farthest from that region's border (SEEM's distance transform; here scipy's exact Euclidean one) dilated
  by a ``dilation``² square; prompts whose IoU already reaches ``keep_iou`` (0.925) get no click. Difference: SEEM
  clicks pixel (0, 0) when the chosen region is empty; here such a prompt gets no click.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage
from torch import Tensor

__all__ = ['SHAPES', 'draw_prompt', 'sample_spatial_prompts', 'next_click_prompts']

#: SEEM's training shapes we draw (``CANDIDATE_NAMES`` less Circle) and their default probabilities.
SHAPES = ('point', 'polygon', 'scribble')


def _random_pixels(mask: Tensor, num: int, generator: torch.Generator | None) -> Tensor:
    """``num`` distinct random (y, x) pixels of a bool mask (fewer when it has fewer)."""
    idx = mask.flatten().nonzero()[:, 0]
    pick = idx[torch.randperm(len(idx), generator=generator)[:num]]
    w = mask.shape[1]
    return torch.stack([pick // w, pick % w], dim=1)


def _randint(low: int, high: int, generator: torch.Generator | None) -> int:
    """Uniform integer in [low, high] (inclusive, as Python's ``random.randint`` SEEM uses)."""
    return int(torch.randint(low, high + 1, (1,), generator=generator))


def draw_prompt(mask: Tensor, shape: str, generator: torch.Generator | None = None, num_points: int = 20,
                polygon_points: int = 9, scribble_points: int = 5, min_area: int = 10) -> Tensor:
    """One visual prompt (bool H×W, inside ``mask``) of ``shape``; all-False when the mask is too small."""
    mask = mask.bool()
    out = torch.zeros_like(mask)
    area = int(mask.sum())
    if area < min_area:
        return out
    if shape == 'point':
        yx = _random_pixels(mask, _randint(1, min(num_points, area), generator), generator)
        out[yx[:, 0], yx[:, 1]] = True
        return out
    canvas = np.zeros(tuple(mask.shape), dtype=np.uint8)
    if shape == 'polygon':
        yx = _random_pixels(mask, _randint(3, polygon_points, generator), generator).numpy().astype(np.float64)
        angle = np.arctan2(yx[:, 0] - yx[:, 0].mean(), yx[:, 1] - yx[:, 1].mean())
        xy = yx[np.argsort(angle)][:, ::-1].round().astype(np.int32)
        cv2.fillPoly(canvas, [xy.reshape(-1, 1, 2)], 1)
    elif shape == 'scribble':
        yx = _random_pixels(mask, _randint(2, scribble_points, generator), generator).numpy()
        xy = yx[:, ::-1].astype(np.int32).reshape(-1, 1, 2)
        cv2.polylines(canvas, [xy], isClosed=False, color=1, thickness=3)
    else:
        raise ValueError(f'unknown prompt shape {shape!r}; expected one of {SHAPES}')
    return torch.from_numpy(canvas.astype(bool)).to(mask.device) & mask


def sample_spatial_prompts(masks: Tensor, max_candidate: int = 10,
                           shape_probs: Mapping[str, float] | None = None,
                           generator: torch.Generator | None = None, **draw_kwargs: int) -> tuple[Tensor, Tensor]:
    """SEEM's ``ShapeSampler`` for one image: (prompts, their GT masks), both Bool[n, H, W], n ≤ ``max_candidate``.

    Candidates are a random subset of the image's GT masks; a candidate whose shape comes out empty (a tiny mask)
    keeps an all-False GT mask, which the spatial loss skips (SEEM marks it ``'none'`` the same way). An image
    without GT masks gets one empty prompt.
    """
    probs = dict(shape_probs or {s: 1.0 / len(SHAPES) for s in SHAPES})
    unknown = set(probs) - set(SHAPES)
    if unknown:
        raise ValueError(f'shape_probs: unknown shapes {sorted(unknown)}; expected some of {SHAPES}')
    names = list(probs)
    weights = torch.tensor([float(probs[n]) for n in names])
    if (weights < 0).any() or weights.sum() <= 0:
        raise ValueError(f'shape_probs must be non-negative with a positive sum, got {probs}')
    masks = masks.bool()
    if len(masks) == 0:
        empty = torch.zeros((1, *masks.shape[-2:]), dtype=torch.bool, device=masks.device)
        return empty, empty.clone()
    order = torch.randperm(len(masks), generator=generator)[:max_candidate].to(masks.device)
    gts = masks[order].clone()
    kinds = torch.multinomial(weights, len(gts), replacement=True, generator=generator).tolist()
    prompts = torch.stack([draw_prompt(m, names[k], generator, **draw_kwargs) for m, k in zip(gts, kinds)])
    gts[~prompts.flatten(1).any(1)] = False
    return prompts, gts


@torch.no_grad()
def next_click_prompts(prev_logits: Tensor, gt_masks: Sequence[Tensor], pos: Sequence[Tensor],
                       neg: Sequence[Tensor], dilation: int = 3, keep_iou: float = 0.925
                       ) -> tuple[list[Tensor], list[Tensor]]:
    """SEEM's ``prepare_next_spaital_mask`` ('best' mode): the prompts with one more simulated click each.

    Args:
        prev_logits: B×ns×h×w selected mask logits of the round (the decoder's ``prev_mask``).
        gt_masks / pos / neg: per image Bool[ns_b, H, W] GT masks and positive / negative prompt masks (batch size).
    Returns:
        (pos, neg) with the new clicks added.
    """
    new_pos, new_neg = [], []
    kernel = torch.ones(1, 1, dilation, dilation, device=prev_logits.device)
    for b, (gt, p, n) in enumerate(zip(gt_masks, pos, neg)):
        ns = len(gt)
        pred = F.interpolate(prev_logits[b:b + 1, :ns].float(), size=gt.shape[-2:], mode='bilinear',
                             align_corners=False)[0] > 0
        clicked = p | n
        fn = gt & ~pred & ~clicked
        fp = ~gt & pred & ~clicked
        inter = (gt & pred).flatten(1).sum(1).float()
        union = (gt | pred).flatten(1).sum(1).float()
        iou = inter / (union + 1e-8)
        positive = fn.flatten(1).sum(1) > fp.flatten(1).sum(1)
        region = torch.where(positive[:, None, None], fn, fp)
        clicks = torch.zeros_like(gt)
        for k in range(ns):
            if iou[k] >= keep_iou or not gt[k].any() or not region[k].any():
                continue
            dist = ndimage.distance_transform_edt(np.pad(region[k].cpu().numpy(), 1))[1:-1, 1:-1]
            y, x = np.unravel_index(int(dist.argmax()), dist.shape)
            clicks[k, y, x] = True
        clicks = F.conv2d(clicks[:, None].float(), kernel, padding=dilation // 2)[:, 0] > 0
        new_pos.append(p | (clicks & positive[:, None, None]))
        new_neg.append(n | (clicks & ~positive[:, None, None]))
    return new_pos, new_neg
