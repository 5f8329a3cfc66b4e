"""Score-based object selection (DreamMask: keep if clip_score ≥ 0.25 and mask_uncertainty ≤ 0.30)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

EMPTY_MASK = 'empty_mask'
LOW_CLIP = 'low_clip_score'
HIGH_UNCERTAINTY = 'high_mask_uncertainty'


@dataclass
class SelectionConfig:
    clip_threshold: float = 0.25
    max_uncertainty: float = 0.30
    min_mask_area: int = 1


def select_objects(scores: dict, cfg: SelectionConfig) -> list[tuple[int, str | None]]:
    """``[(object index, None if kept else reason)]``; checks in order empty mask, CLIP, uncertainty."""
    out = []
    masks = scores['masks']
    for i in range(len(scores['clip_scores'])):
        area = int(np.asarray(masks[i]).sum())
        if area < cfg.min_mask_area:
            out.append((i, EMPTY_MASK))
        elif not float(scores['clip_scores'][i]) >= cfg.clip_threshold:
            out.append((i, LOW_CLIP))
        elif not float(scores['mask_uncertainty'][i]) <= cfg.max_uncertainty:
            out.append((i, HIGH_UNCERTAINTY))
        else:
            out.append((i, None))
    return out
