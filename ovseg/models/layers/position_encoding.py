"""Sine positional encoding of a feature map (DETR), used by the pixel decoder and transformer decoder."""
from __future__ import annotations

import math

import torch
from torch import Tensor, nn


class PositionEmbeddingSine(nn.Module):
    """2-D sine/cosine encoding with ``2·num_pos_feats`` channels, normalised to [0, 2π] when asked."""

    def __init__(self, num_pos_feats: int = 128, temperature: float = 10000.0, normalize: bool = True,
                 scale: float | None = None) -> None:
        super().__init__()
        self.num_pos_feats, self.temperature, self.normalize = num_pos_feats, temperature, normalize
        self.scale = 2 * math.pi if scale is None else scale
        self._cache: dict[tuple, Tensor] = {}

    def forward(self, x: Tensor) -> Tensor:
        """x: B×C×H×W (only its shape/device/dtype are used) → B×(2·num_pos_feats)×H×W.

        The encoding depends on (H, W) only: it is computed once per size, device and dtype and expanded over the
        batch (a few sizes per run; kept in a small cache, not in the state dict)."""
        key = (int(x.shape[-2]), int(x.shape[-1]), x.device, x.dtype)
        pos = self._cache.get(key)
        if pos is None:
            pos = self._encode(x[:1])
            if len(self._cache) >= 16:
                self._cache.pop(next(iter(self._cache)))
            self._cache[key] = pos
        return pos.expand(x.shape[0], -1, -1, -1)

    def _encode(self, x: Tensor) -> Tensor:
        b, _, h, w = x.shape
        ones = torch.ones((b, h, w), device=x.device, dtype=torch.float32)
        y_embed = ones.cumsum(1)
        x_embed = ones.cumsum(2)
        if self.normalize:
            eps = 1e-6
            y_embed = y_embed / (y_embed[:, -1:, :] + eps) * self.scale
            x_embed = x_embed / (x_embed[:, :, -1:] + eps) * self.scale
        dim_t = torch.arange(self.num_pos_feats, dtype=torch.float32, device=x.device)
        dim_t = self.temperature ** (2 * torch.div(dim_t, 2, rounding_mode='floor') / self.num_pos_feats)
        pos_x = x_embed[:, :, :, None] / dim_t
        pos_y = y_embed[:, :, :, None] / dim_t
        pos_x = torch.stack((pos_x[:, :, :, 0::2].sin(), pos_x[:, :, :, 1::2].cos()), dim=4).flatten(3)
        pos_y = torch.stack((pos_y[:, :, :, 0::2].sin(), pos_y[:, :, :, 1::2].cos()), dim=4).flatten(3)
        return torch.cat((pos_y, pos_x), dim=3).permute(0, 3, 1, 2).to(x.dtype)
