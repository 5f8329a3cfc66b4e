"""Transformer building blocks of the Mask2Former family: attention / FFN layers and the one ``MLP``.

Tensors are sequence-first (``L × B × C``) as in the official Mask2Former / FC-CLIP / SEEM decoders, and the
sub-module names (``self_attn``, ``multihead_attn``, ``linear1``, ``linear2``, ``norm``) are the official ones, so
released checkpoints load by prefix. ``normalize_before`` switches a layer to pre-norm
(Mask2Former's ``PRE_NORM``); FC-CLIP and SEEM use post-norm.
"""
from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn


def xavier_init_(module: nn.Module) -> None:
    """Xavier-uniform init of every matrix parameter (Mask2Former's ``_reset_parameters``)."""
    for p in module.parameters():
        if p.dim() > 1:
            nn.init.xavier_uniform_(p)


def with_pos(x: Tensor, pos: Tensor | None) -> Tensor:
    return x if pos is None else x + pos


class MLP(nn.Module):
    """``num_layers`` linear layers with ReLU between them (Mask2Former ``MLP``; params ``layers.{i}.*``)."""

    def __init__(self, input_dim: int, hidden_dim: int, output_dim: int, num_layers: int) -> None:
        super().__init__()
        self.num_layers = num_layers
        hidden = [hidden_dim] * (num_layers - 1)
        self.layers = nn.ModuleList(nn.Linear(n, k) for n, k in zip([input_dim] + hidden, hidden + [output_dim]))

    def forward(self, x: Tensor) -> Tensor:
        for i, layer in enumerate(self.layers):
            x = F.relu(layer(x)) if i < self.num_layers - 1 else layer(x)
        return x


class SelfAttentionLayer(nn.Module):
    """Self-attention among queries; ``attn_mask`` (bool, True = blocked) separates query groups."""

    def __init__(self, d_model: int, nhead: int, dropout: float = 0.0, normalize_before: bool = False) -> None:
        super().__init__()
        self.self_attn = nn.MultiheadAttention(d_model, nhead, dropout=dropout)
        self.norm = nn.LayerNorm(d_model)
        self.dropout = nn.Dropout(dropout)
        self.normalize_before = normalize_before
        xavier_init_(self)

    def forward(self, tgt: Tensor, query_pos: Tensor | None = None, attn_mask: Tensor | None = None) -> Tensor:
        x = self.norm(tgt) if self.normalize_before else tgt
        q = k = with_pos(x, query_pos)
        out = tgt + self.dropout(self.self_attn(q, k, value=x, attn_mask=attn_mask, need_weights=False)[0])
        return out if self.normalize_before else self.norm(out)


class CrossAttentionLayer(nn.Module):
    """Cross-attention from queries to one feature level; ``memory_mask`` is the masked-attention mask."""

    def __init__(self, d_model: int, nhead: int, dropout: float = 0.0, normalize_before: bool = False) -> None:
        super().__init__()
        self.multihead_attn = nn.MultiheadAttention(d_model, nhead, dropout=dropout)
        self.norm = nn.LayerNorm(d_model)
        self.dropout = nn.Dropout(dropout)
        self.normalize_before = normalize_before
        xavier_init_(self)

    def forward(self, tgt: Tensor, memory: Tensor, memory_mask: Tensor | None = None, pos: Tensor | None = None,
                query_pos: Tensor | None = None) -> Tensor:
        x = self.norm(tgt) if self.normalize_before else tgt
        out = self.multihead_attn(with_pos(x, query_pos), with_pos(memory, pos), value=memory,
                                  attn_mask=memory_mask, need_weights=False)[0]
        out = tgt + self.dropout(out)
        return out if self.normalize_before else self.norm(out)


class FFNLayer(nn.Module):
    """ReLU feed-forward block with a residual connection."""

    def __init__(self, d_model: int, dim_feedforward: int = 2048, dropout: float = 0.0,
                 normalize_before: bool = False) -> None:
        super().__init__()
        self.linear1 = nn.Linear(d_model, dim_feedforward)
        self.dropout = nn.Dropout(dropout)
        self.linear2 = nn.Linear(dim_feedforward, d_model)
        self.norm = nn.LayerNorm(d_model)
        self.normalize_before = normalize_before
        xavier_init_(self)

    def forward(self, tgt: Tensor) -> Tensor:
        x = self.norm(tgt) if self.normalize_before else tgt
        out = tgt + self.dropout(self.linear2(self.dropout(F.relu(self.linear1(x)))))
        return out if self.normalize_before else self.norm(out)
