"""Mask scorers: produce, per layout object, a binary mask, a CLIP score and a mask uncertainty.

``score_scene(image, layout, context) -> dict(masks=N×H×W bool, clip_scores=N, mask_uncertainty=N)``.
``context`` carries the render seed and renderer (used by the procedural oracle).
"""
from __future__ import annotations

import numpy as np

from ..registry import MASK_SCORERS
from .clip_score import ClipCropScorer, build_clip
from .sam import SamBoxSegmenter, build_sam


def layout_boxes(layout) -> np.ndarray:
    return np.array([[o.x, o.y, o.x + o.w, o.y + o.h] for o in layout.objects], np.float32).reshape(-1, 4)


@MASK_SCORERS.register_module()
class SamClipScorer:
    """DreamMask's selection scores: SAM box prompt (multimask, best score; uncertainty = 1 − score, the
    score clipped to [0, 1]) and the CLIP cosine of the box crop with the category name.

    Args:
        sam: ``dict(checkpoint=path, model_type='vit_h'|'vit_l'|'vit_b'|'tiny', tiny_cfg=None)``.
        clip: ``dict(model='ViT-B-32', pretrained='openai' | path, cache_dir=None, prompt='{}',
            force_quick_gelu=True)`` (OpenAI weights need QuickGELU; required for a local ViT-B-32 file); for the
            toy ``dict(model='nss-tiny-vit', pretrained=None)``.
        device: ``'cpu'``/``'cuda'``; box_batch_size / clip_batch_size: batch sizes of the SAM decoder and
            CLIP image encoder.
    Models are built at construction, so a missing checkpoint fails at start-up.
    """

    def __init__(self, sam: dict, clip: dict, device: str = 'cpu', box_batch_size: int = 64,
                 clip_batch_size: int = 64, seed: int = 0):
        sam = dict(sam)
        self.segmenter = SamBoxSegmenter(
            build_sam(sam.get('checkpoint'), sam.get('model_type', 'vit_h'), sam.get('tiny_cfg'),
                      device=device), box_batch_size)
        clip = dict(clip)
        prompt = clip.pop('prompt', '{}')
        model, pre, tok = build_clip(device=device, seed=seed, **clip)
        self.clip = ClipCropScorer(model, pre, tok, prompt=prompt, batch_size=clip_batch_size, device=device)
        self.desc = {
            'type': type(self).__name__,
            'sam': sam.get('model_type', 'vit_h'),
            'clip': clip.get('model', 'ViT-B-32')
        }

    def describe(self):
        return self.desc

    def score_scene(self, image: np.ndarray, layout, context: dict | None = None) -> dict:
        boxes = layout_boxes(layout)
        masks, scores = self.segmenter.segment(image, boxes)
        clip_scores = self.clip.score(image, boxes, [o.name for o in layout.objects])
        return dict(masks=masks, clip_scores=clip_scores,
                    mask_uncertainty=(1.0 - np.clip(scores, 0.0, 1.0)).astype(np.float32))


@MASK_SCORERS.register_module()
class ProceduralOracleScorer:
    """TOY SCORER for the offline toy pipeline -- not a model. Works only with :class:`ProceduralRenderer`.

    Masks are the renderer's exact *visible* masks (it knows what it drew). ``mask_uncertainty`` = the
    occluded fraction of the object (1 − visible/full area): heavily covered objects are "uncertain".
    ``clip_score`` = cosine between the object's mean visible colour and its class colour, both centred at
    grey (a stand-in for "does the crop look like the category"). So the DreamMask thresholds keep
    objects that are at most 30 % occluded and drawn in their class colour.
    """

    def __init__(self, min_visible_px: int = 1):
        self.min_visible_px = min_visible_px

    def describe(self):
        return {
            'type': type(self).__name__,
            'note': 'toy oracle: renderer masks, occlusion-based uncertainty'
        }

    def score_scene(self, image: np.ndarray, layout, context: dict | None = None) -> dict:
        from ..render.procedural import ProceduralRenderer, visible_masks
        ctx = context or {}
        renderer = ctx.get('renderer')
        if not isinstance(renderer, ProceduralRenderer):
            raise TypeError('ProceduralOracleScorer needs the ProceduralRenderer that drew the scene')
        _, full = renderer.render_with_masks(layout, ctx['render_seed'])
        vis = visible_masks(full, renderer.order(layout))
        unc, cs = [], []
        for o, f, v in zip(layout.objects, full, vis):
            fa, va = int(f.sum()), int(v.sum())
            unc.append(1.0 - va / fa if fa else 1.0)
            if va < self.min_visible_px:
                cs.append(0.0)
                continue
            mean = image[v].reshape(-1, 3).astype(np.float64).mean(0) - 127.5
            ref = np.asarray(renderer.appearance(o.name).color, np.float64) - 127.5
            den = np.linalg.norm(mean) * np.linalg.norm(ref)
            cs.append(float(mean @ ref / den) if den > 1e-6 else 0.0)
        h, w = image.shape[:2]
        return dict(masks=np.stack(vis) if vis else np.zeros((0, h, w), bool),
                    clip_scores=np.asarray(cs, np.float32), mask_uncertainty=np.asarray(unc, np.float32))
