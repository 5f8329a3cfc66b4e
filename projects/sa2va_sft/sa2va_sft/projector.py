"""InternVL's vision→LLM bridge: pixel shuffle (0.5) of the ViT patch grid and the ``mlp1`` projector.

Facts from the Sa2VA / InternVL ``modeling_sa2va_chat.py`` (``pixel_shuffle``, ``extract_feature``, ``mlp1``):

* features of layer ``select_layer`` (-1 = the last hidden state), CLS token dropped, reshaped to a square
  (B, h, w, C) grid in row-major token order;
* ``pixel_shuffle(x, 0.5)`` folds each 2×2 block of the grid into the channels (C → 4C, grid / 2); with
  ``ps_version='v2'`` (every InternVL2.5 / InternVL3 / Sa2VA release) the output grid keeps the input
  orientation, ``'v1'`` (InternVL 1.x) leaves it transposed;
* ``mlp1 = Sequential(LayerNorm(4C), Linear(4C, D), GELU, Linear(D, D))``, keys ``mlp1.0`` / ``mlp1.1`` /
  ``mlp1.3`` (index 2, the GELU, has no weights);
* a 448×448 tile gives (448 / 14)² · 0.5² = 256 LLM tokens.
"""
from __future__ import annotations

import warnings

from torch import Tensor, nn

__all__ = ['PS_VERSIONS', 'pixel_shuffle', 'build_mlp1', 'extract_visual_tokens', 'num_image_tokens']

PS_VERSIONS = ('v1', 'v2')


def _fold(ratio: float) -> int:
    """1 / ratio as an exact integer (0.5 → 2); other ratios cannot fold whole patches."""
    inv = 1.0 / ratio if ratio > 0 else 0.0
    if ratio <= 0 or ratio > 1 or abs(inv - round(inv)) > 1e-9:
        raise ValueError(f'downsample ratio must be 1/k for an integer k >= 1 (InternVL uses 0.5), got {ratio}')
    return int(round(inv))


def pixel_shuffle(x: Tensor, scale_factor: float = 0.5, ps_version: str = 'v2') -> Tensor:
    """(N, W, H, C) → (N, W·s, H·s, C / s²) exactly as InternVL (s = ``scale_factor``; names follow the
    official code, in practice the first grid axis is the token row).

    With s = 0.5, output cell (i, j) holds the 2×2 input block at rows 2i..2i+1, cols 2j..2j+1 in row-major
    order: ``[x[2i, 2j], x[2i, 2j+1], x[2i+1, 2j], x[2i+1, 2j+1]]`` concatenated on channels (``'v2'``);
    ``'v1'`` returns the transpose of that grid (and warns, as the official code does).
    """
    if ps_version not in PS_VERSIONS:
        raise ValueError(f'ps_version must be one of {PS_VERSIONS}, got {ps_version!r}')
    if x.ndim != 4:
        raise ValueError(f'pixel_shuffle expects (N, W, H, C), got shape {tuple(x.shape)}')
    k = _fold(scale_factor)
    n, w, h, c = x.shape
    if w % k or h % k:
        raise ValueError(f'pixel_shuffle: grid {w}x{h} is not divisible by {k} (scale_factor {scale_factor})')
    x = x.reshape(n, w, h // k, c * k)  # fold k neighbours along the second grid axis into channels
    x = x.permute(0, 2, 1, 3).contiguous()  # (N, H/k, W, kC)
    x = x.reshape(n, h // k, w // k, c * k * k)  # fold k neighbours along the first grid axis
    if ps_version == 'v1':
        warnings.warn("pixel_shuffle ps_version 'v1': height and width are not swapped back, so the token grid "
                      "is transposed (InternVL 1.x behaviour); every Sa2VA release uses 'v2'", stacklevel=2)
        return x
    return x.permute(0, 2, 1, 3).contiguous()


def build_mlp1(vit_hidden: int, llm_hidden: int, downsample_ratio: float = 0.5) -> nn.Sequential:
    """``Sequential(LayerNorm(vit·k²), Linear(vit·k², llm), GELU, Linear(llm, llm))``, k = 1 / ratio.

    LayerNorm eps is torch's default 1e-5 and GELU the exact (erf) one, as in the official ``nn.LayerNorm`` /
    ``nn.GELU()`` calls."""
    k = _fold(downsample_ratio)
    width = vit_hidden * k * k
    return nn.Sequential(nn.LayerNorm(width), nn.Linear(width, llm_hidden), nn.GELU(),
                         nn.Linear(llm_hidden, llm_hidden))


def num_image_tokens(image_size: int = 448, patch_size: int = 14, downsample_ratio: float = 0.5) -> int:
    """LLM tokens per tile: (image_size / patch)² · ratio² (448, 14, 0.5 → 256)."""
    grid = image_size // patch_size
    k = _fold(downsample_ratio)
    if grid % k:
        raise ValueError(f'patch grid {grid} is not divisible by {k}')
    return (grid // k) ** 2


def extract_visual_tokens(vision_model: nn.Module, mlp1: nn.Module, pixel_values: Tensor, select_layer: int = -1,
                          downsample_ratio: float = 0.5, ps_version: str = 'v2') -> Tensor:
    """(B, 3, S, S) tiles → (B, (S / patch)² · ratio², llm_hidden) LLM input embeddings.

    ``vision_model`` returns an object with ``last_hidden_state`` and ``hidden_states`` (e.g.
    :class:`~.intern_vit.InternVisionModel`). Defaults: ``select_layer=-1``, ``downsample_ratio=0.5``,
    ``ps_version='v2'`` — the values in every Sa2VA InternVL-family ``config.json``.
    """
    if select_layer == -1:
        feats = vision_model(pixel_values).last_hidden_state
    else:
        states = vision_model(pixel_values, output_hidden_states=True).hidden_states
        if not -len(states) <= select_layer < len(states):
            raise IndexError(f'select_layer {select_layer} out of range for {len(states)} hidden states')
        feats = states[select_layer]
    feats = feats[:, 1:, :]  # drop CLS
    side = int(round(feats.shape[1] ** 0.5))
    if side * side != feats.shape[1]:
        raise ValueError(f'{feats.shape[1]} patch tokens do not form a square grid: InternVL tiles are square')
    feats = feats.reshape(feats.shape[0], side, side, -1)
    feats = pixel_shuffle(feats, scale_factor=downsample_ratio, ps_version=ps_version)
    feats = feats.reshape(feats.shape[0], -1, feats.shape[-1])
    return mlp1(feats)

