"""Mask2Former masked-attention transformer decoder with FC-CLIP's in-vocabulary class head.

Each layer runs masked cross-attention (queries attend only inside their current mask), then self-
attention, then an FFN, visiting the 1/32, 1/16, 1/8 maps round-robin. Predictions after the learnable
query initialisation and after every layer give deep supervision. Attribute names mirror the official
``sem_seg_head.predictor.*`` so released checkpoints load by prefix.
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ovseg.models.layers import PositionEmbeddingSine
from ovseg.registry import MODELS


def _xavier_init(module: nn.Module) -> None:
    for p in module.parameters():
        if p.dim() > 1:
            nn.init.xavier_uniform_(p)


class MLP(nn.Module):
    """Mask2Former ``MLP`` (ReLU between layers; params ``layers.{i}``), kept here so the decoder does not
    depend on the heads package."""

    def __init__(self, input_dim: int, hidden_dim: int, output_dim: int, num_layers: int) -> None:
        super().__init__()
        self.num_layers = num_layers
        h = [hidden_dim] * (num_layers - 1)
        self.layers = nn.ModuleList(nn.Linear(n, k) for n, k in zip([input_dim] + h, h + [output_dim]))

    def forward(self, x: Tensor) -> Tensor:
        for i, layer in enumerate(self.layers):
            x = F.relu(layer(x)) if i < self.num_layers - 1 else layer(x)
        return x


def masked_attention_mask(mask_logits: Tensor, size: Tuple[int, int], num_heads: int) -> Tensor:
    """Boolean cross-attention mask (True = blocked) from B×Q×H×W mask logits → (B·heads)×Q×(h·w).

    A query attends only where its mask, resized to the level, has ``sigmoid >= 0.5``; a query whose mask is
    empty at that level would attend to nothing (NaN softmax), so such rows are left fully open.
    """
    attn = F.interpolate(mask_logits, size=size, mode='bilinear', align_corners=False)
    attn = attn.sigmoid().flatten(2) < 0.5  # B × Q × HW
    attn = attn & ~attn.all(-1, keepdim=True)
    return attn.unsqueeze(1).expand(-1, num_heads, -1, -1).flatten(0, 1).detach()


class SelfAttentionLayer(nn.Module):
    """Post-norm self-attention among queries (sequence-first tensors, as the official code)."""

    def __init__(self, d_model: int, nhead: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.self_attn = nn.MultiheadAttention(d_model, nhead, dropout=dropout)
        self.norm = nn.LayerNorm(d_model)
        self.dropout = nn.Dropout(dropout)
        _xavier_init(self)

    def forward(self, tgt: Tensor, query_pos: Tensor) -> Tensor:
        q = k = tgt + query_pos
        return self.norm(tgt + self.dropout(self.self_attn(q, k, value=tgt, need_weights=False)[0]))


class CrossAttentionLayer(nn.Module):
    """Post-norm masked cross-attention from queries to one feature level."""

    def __init__(self, d_model: int, nhead: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.multihead_attn = nn.MultiheadAttention(d_model, nhead, dropout=dropout)
        self.norm = nn.LayerNorm(d_model)
        self.dropout = nn.Dropout(dropout)
        _xavier_init(self)

    def forward(self, tgt: Tensor, memory: Tensor, memory_mask: Optional[Tensor], pos: Tensor,
                query_pos: Tensor) -> Tensor:
        out = self.multihead_attn(tgt + query_pos, memory + pos, value=memory, attn_mask=memory_mask,
                                  need_weights=False)[0]
        return self.norm(tgt + self.dropout(out))


class FFNLayer(nn.Module):
    """Post-norm ReLU feed-forward block."""

    def __init__(self, d_model: int, dim_feedforward: int = 2048, dropout: float = 0.0) -> None:
        super().__init__()
        self.linear1 = nn.Linear(d_model, dim_feedforward)
        self.dropout = nn.Dropout(dropout)
        self.linear2 = nn.Linear(dim_feedforward, d_model)
        self.norm = nn.LayerNorm(d_model)
        _xavier_init(self)

    def forward(self, tgt: Tensor) -> Tensor:
        return self.norm(tgt + self.dropout(self.linear2(self.dropout(F.relu(self.linear1(tgt))))))


@MODELS.register_module()
class FCCLIPTransformerDecoder(nn.Module):
    """Masked-attention decoder: ``forward(multi_scale, mask_features, text_classifier, num_templates)``.

    Args:
        in_channels: channels of the multi-scale maps (pixel decoder ``conv_dim``).
        hidden_dim / num_queries / nheads / dim_feedforward: 256 / 250 / 8 / 2048 in FC-CLIP.
        dec_layers: 9 (the official DEC_LAYERS 10 counts the query-initialisation prediction).
        pre_norm: only post-norm (False) is implemented, as FC-CLIP uses.
        mask_dim: channels of the mask features (256).
        enforce_input_project: 1×1 input projections even when ``in_channels == hidden_dim``.
        class_head: config (or module) of the in-vocabulary classifier, called as
            ``class_head(decoder_output, mask_features, outputs_mask, text_classifier, num_templates)``.
    """

    num_feature_levels = 3

    def __init__(self, in_channels: int = 256, hidden_dim: int = 256, num_queries: int = 250, nheads: int = 8,
                 dim_feedforward: int = 2048, dec_layers: int = 9, pre_norm: bool = False, mask_dim: int = 256,
                 enforce_input_project: bool = False, class_head: Union[dict, nn.Module, None] = None,
                 dropout: float = 0.0) -> None:
        super().__init__()
        if pre_norm:
            raise NotImplementedError('FC-CLIP uses post-norm decoder layers (MASK_FORMER.PRE_NORM False)')
        if class_head is None:
            raise ValueError('FCCLIPTransformerDecoder needs a class_head (e.g. dict(type="InVocabClassifier"))')
        self.pe_layer = PositionEmbeddingSine(hidden_dim // 2, normalize=True)
        self.num_heads, self.num_layers, self.num_queries = nheads, dec_layers, num_queries
        self.transformer_self_attention_layers = nn.ModuleList(
            [SelfAttentionLayer(hidden_dim, nheads, dropout) for _ in range(dec_layers)])
        self.transformer_cross_attention_layers = nn.ModuleList(
            [CrossAttentionLayer(hidden_dim, nheads, dropout) for _ in range(dec_layers)])
        self.transformer_ffn_layers = nn.ModuleList(
            [FFNLayer(hidden_dim, dim_feedforward, dropout) for _ in range(dec_layers)])
        self.decoder_norm = nn.LayerNorm(hidden_dim)
        self.query_feat = nn.Embedding(num_queries, hidden_dim)
        self.query_embed = nn.Embedding(num_queries, hidden_dim)
        self.level_embed = nn.Embedding(self.num_feature_levels, hidden_dim)
        self.input_proj = nn.ModuleList()
        for _ in range(self.num_feature_levels):
            if in_channels != hidden_dim or enforce_input_project:
                conv = nn.Conv2d(in_channels, hidden_dim, kernel_size=1)
                nn.init.kaiming_uniform_(conv.weight, a=1)
                nn.init.constant_(conv.bias, 0)
                self.input_proj.append(conv)
            else:
                self.input_proj.append(nn.Sequential())
        self.mask_embed = MLP(hidden_dim, hidden_dim, mask_dim, 3)
        self.class_head = MODELS.build(class_head) if isinstance(class_head, dict) else class_head

    def forward(self, multi_scale_features: Sequence[Tensor], mask_features: Tensor, text_classifier: Tensor,
                num_templates: Sequence[int]) -> Dict[str, Any]:
        """→ ``pred_logits`` B×Q×(C+1), ``pred_masks`` B×Q×H/4×W/4, ``aux_outputs`` (one per earlier step)."""
        if len(multi_scale_features) != self.num_feature_levels:
            raise ValueError(f'expected {self.num_feature_levels} feature levels, got {len(multi_scale_features)}')
        src, pos, sizes = [], [], []
        for i, x in enumerate(multi_scale_features):
            sizes.append(tuple(x.shape[-2:]))
            pos.append(self.pe_layer(x).flatten(2).permute(2, 0, 1))
            src.append((self.input_proj[i](x).flatten(2) + self.level_embed.weight[i][None, :, None]).permute(2, 0, 1))
        bs = src[0].shape[1]
        query_embed = self.query_embed.weight.unsqueeze(1).repeat(1, bs, 1)
        output = self.query_feat.weight.unsqueeze(1).repeat(1, bs, 1)

        classes: List[Tensor] = []
        masks: List[Tensor] = []
        cls, msk, attn_mask = self._prediction_heads(output, mask_features, sizes[0], text_classifier, num_templates)
        classes.append(cls)
        masks.append(msk)
        for i in range(self.num_layers):
            level = i % self.num_feature_levels
            output = self.transformer_cross_attention_layers[i](output, src[level], attn_mask, pos[level],
                                                                query_embed)
            output = self.transformer_self_attention_layers[i](output, query_embed)
            output = self.transformer_ffn_layers[i](output)
            cls, msk, attn_mask = self._prediction_heads(output, mask_features,
                                                         sizes[(i + 1) % self.num_feature_levels],
                                                         text_classifier, num_templates)
            classes.append(cls)
            masks.append(msk)
        return dict(pred_logits=classes[-1], pred_masks=masks[-1],
                    aux_outputs=[dict(pred_logits=c, pred_masks=m) for c, m in zip(classes[:-1], masks[:-1])])

    def _prediction_heads(self, output: Tensor, mask_features: Tensor, attn_size: Tuple[int, int],
                          text_classifier: Tensor, num_templates: Sequence[int]) -> Tuple[Tensor, Tensor, Tensor]:
        """decoder_norm → mask_embed·mask_features (masks), class_head (logits), next layer's attention mask."""
        decoder_output = self.decoder_norm(output).transpose(0, 1)  # B × Q × C
        mask_embed = self.mask_embed(decoder_output)
        outputs_mask = torch.einsum('bqc,bchw->bqhw', mask_embed, mask_features)
        outputs_class = self.class_head(decoder_output, mask_features, outputs_mask, text_classifier,
                                        num_templates)
        return outputs_class, outputs_mask, masked_attention_mask(outputs_mask, attn_size, self.num_heads)
