"""CLIP score of a box crop against its category name (cosine of L2-normalised open_clip embeddings)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ..errors import MissingModelError

TINY_CLIP_NAME = 'nss-tiny-vit'
TINY_CLIP_CFG = {
    'embed_dim': 32,
    'vision_cfg': {
        'image_size': 32,
        'layers': 1,
        'width': 32,
        'head_width': 16,
        'patch_size': 16
    },
    'text_cfg': {
        'context_length': 16,
        'vocab_size': 49408,
        'width': 32,
        'heads': 2,
        'layers': 1
    },
}
CLIP_HOW = (
    "Fetch the weights once on a machine with internet: `python -c \"import open_clip; "
    "open_clip.create_model('ViT-B-32', pretrained='openai', cache_dir='<dir>')\"`, copy <dir> here and "
    "set masks.clip.cache_dir=<dir>; or download the .pt/.bin/.safetensors file and set "
    "masks.clip.pretrained to its path.")


def register_tiny_clip():
    """Add the ``nss-tiny-vit`` architecture (a 1-layer 32-wide ViT/text tower) to open_clip's registry."""
    from open_clip import factory
    if TINY_CLIP_NAME not in factory._MODEL_CONFIGS:
        import copy
        factory._MODEL_CONFIGS[TINY_CLIP_NAME] = copy.deepcopy(TINY_CLIP_CFG)
    return TINY_CLIP_NAME


def build_clip(model: str = 'ViT-B-32', pretrained: str | None = 'openai', cache_dir: str | None = None,
               device: str = 'cpu', seed: int = 0, force_quick_gelu: bool | None = None):
    """(model, preprocess, tokenizer). ``model='nss-tiny-vit'`` with ``pretrained=None`` = random tiny CLIP.

    ``pretrained`` is a local weights file, or an open_clip tag (``'openai'``) resolved offline from
    ``cache_dir`` (the Hugging Face cache layout open_clip downloads into).

    ``force_quick_gelu``: DreamMask's selection uses OpenAI ViT-B/32, trained with QuickGELU; with plain GELU
    every ``clip_score`` shifts and the 0.25 threshold no longer means what it did. ``None`` takes what the
    weights need (:func:`ovseg.models.backbones.clip_backbone.required_quick_gelu`): the tag's setting
    (``'openai'``: QuickGELU); for a local ViT-B-32 file it cannot be told (its open_clip tags disagree) and
    must be given.
    """
    import open_clip

    # CLIP weight handling has one home, the FC-CLIP backbone module (imported here, not at the top: the NSS
    # package must import without pulling in the model zoo unless a CLIP scorer is built)
    from ovseg.models.backbones.clip_backbone import required_quick_gelu
    if model == TINY_CLIP_NAME:
        register_tiny_clip()
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            m, _, pre = open_clip.create_model_and_transforms(model, pretrained=None, device=device,
                                                              force_quick_gelu=bool(force_quick_gelu))
        return m.eval(), pre, open_clip.get_tokenizer(model)
    if pretrained is None:
        raise ValueError('build_clip: pretrained weights are required for a real CLIP scorer '
                         f'(use model={TINY_CLIP_NAME!r} for the random toy model). {CLIP_HOW}')
    looks_like_path = any(s in str(pretrained) for s in ('/', '\\')) or Path(
        str(pretrained)).suffix in ('.pt', '.pth', '.bin', '.safetensors')
    if looks_like_path and not Path(pretrained).is_file():
        raise MissingModelError(f'CLIP {model} weights', pretrained, CLIP_HOW)
    if not looks_like_path:
        if cache_dir is None or not Path(cache_dir).is_dir():
            raise MissingModelError(f"CLIP {model} '{pretrained}' cache directory", cache_dir, CLIP_HOW)
        import os
        os.environ.setdefault('HF_HUB_OFFLINE', '1')
    if force_quick_gelu is None:
        from open_clip.pretrained import get_pretrained_cfg
        tag_cfg = {} if looks_like_path else get_pretrained_cfg(model, pretrained)
        force_quick_gelu = required_quick_gelu(model, tag_cfg, f'NSS CLIP scorer {model} ({pretrained})')
    try:
        m, _, pre = open_clip.create_model_and_transforms(model, pretrained=pretrained, cache_dir=cache_dir,
                                                          device=device, force_quick_gelu=force_quick_gelu)
    except (RuntimeError, OSError, ValueError) as e:
        raise MissingModelError(f'CLIP {model} weights ({pretrained})', cache_dir or pretrained,
                                f'{CLIP_HOW} (open_clip said: {str(e)[:200]})') from None
    return m.eval(), pre, open_clip.get_tokenizer(model)


class ClipCropScorer:
    """cos(CLIP(image crop), CLIP(text)) per box; text = ``prompt.format(name)`` (default: the raw name, as
    DreamMask's selection script). Crops are encoded in batches of ``batch_size``; text features are
    cached."""

    def __init__(self, model, preprocess, tokenizer, prompt: str = '{}', batch_size: int = 64,
                 device: str = 'cpu'):
        self.model, self.preprocess, self.tokenizer = model, preprocess, tokenizer
        self.prompt = prompt
        self.batch_size = batch_size
        self.device = device
        self._text_cache: dict[str, torch.Tensor] = {}

    @torch.no_grad()
    def text_features(self, names: list[str]) -> torch.Tensor:
        missing = [n for n in dict.fromkeys(names) if n not in self._text_cache]
        if missing:
            tok = self.tokenizer([self.prompt.format(n) for n in missing]).to(self.device)
            f = self.model.encode_text(tok).float()
            f = f / f.norm(dim=-1, keepdim=True).clamp_min(1e-12)
            for n, v in zip(missing, f):
                self._text_cache[n] = v
        return torch.stack([self._text_cache[n] for n in names])

    @torch.no_grad()
    def score(self, image: np.ndarray, boxes_xyxy: np.ndarray, names: list[str]) -> np.ndarray:
        if len(names) == 0:
            return np.zeros((0, ), np.float32)
        pil = Image.fromarray(image)
        h, w = image.shape[:2]
        crops = []
        for x0, y0, x1, y1 in np.asarray(boxes_xyxy):
            x0, y0 = int(max(0, np.floor(x0))), int(max(0, np.floor(y0)))
            x1, y1 = int(min(w, max(x0 + 1, np.ceil(x1)))), int(min(h, max(y0 + 1, np.ceil(y1))))
            crops.append(self.preprocess(pil.crop((x0, y0, x1, y1))))
        feats = []
        for i in range(0, len(crops), self.batch_size):
            f = self.model.encode_image(torch.stack(crops[i:i + self.batch_size]).to(self.device)).float()
            feats.append(f / f.norm(dim=-1, keepdim=True).clamp_min(1e-12))
        img_f = torch.cat(feats)
        txt_f = self.text_features(list(names))
        return (img_f * txt_f).sum(-1).cpu().numpy().astype(np.float32)
