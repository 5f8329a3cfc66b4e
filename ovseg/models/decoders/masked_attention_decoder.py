"""Mask2Former's multi-scale masked-attention transformer decoder with a pluggable class head.

Each layer runs masked cross-attention (a query attends only inside its current mask), then self-attention,
then an FFN, visiting the coarse-to-fine feature levels round-robin. A prediction after the learnable query
initialisation and after every layer gives deep supervision (``aux_outputs``).

What varies between systems is how a query is turned into class scores, so the class head is a module passed
in: Mask2Former's ``LinearClassHead`` (a fixed label set), FC-CLIP's ``InVocabClassifier`` (mask-pooled
features scored against a text classifier), SEEM's projection onto language embeddings. Whatever the head
needs per call (a text classifier, synonym counts) arrives as ``class_inputs`` keyword arguments. Class scores
never feed back into the decoder, so the head runs once on the queries of all predictions together; a head that
pools mask features under each query's mask gives per-prediction weights (``region_weights``), written into one
buffer and applied in one product.

Extra query groups (SEEM's grounding / spatial queries) can be appended to the learnable object queries: they
take part in every layer and get mask predictions (and masked attention) like the object queries, an optional
``self_attn_mask`` controls which groups see each other, and their outputs come back per group.
Parameter names mirror the official ``sem_seg_head.predictor.*`` so released checkpoints load by prefix.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ovseg.models.layers import (
    MLP,
    CrossAttentionLayer,
    FFNLayer,
    PositionEmbeddingSine,
    SelfAttentionLayer,
    pool_with_weights,
)
from ovseg.registry import MODELS


def masked_attention_mask(mask_logits: Tensor, size: tuple[int, int], num_heads: int) -> Tensor:
    """Boolean cross-attention mask (True = blocked) from B×Q×H×W mask logits → (B·heads)×Q×(h·w).

    A query attends only where its mask, resized to the level, has ``sigmoid >= 0.5``; a query whose mask is
    empty at that level would attend to nothing (NaN softmax), so such rows are left fully open.
    """
    attn = F.interpolate(mask_logits, size=size, mode='bilinear', align_corners=False)
    attn = attn.sigmoid().flatten(2) < 0.5  # B × Q × HW
    attn = attn & ~attn.all(-1, keepdim=True)
    return attn.unsqueeze(1).expand(-1, num_heads, -1, -1).flatten(0, 1).detach()


@MODELS.register_module()
class MaskedAttentionDecoder(nn.Module):
    """Mask2Former ``MultiScaleMaskedTransformerDecoder``.

    Args:
        in_channels: channels of the multi-scale maps (pixel decoder ``conv_dim``).
        hidden_dim / num_queries / nheads / dim_feedforward: query width, object queries, attention heads,
            FFN width (FC-CLIP: 256 / 250 / 8 / 2048).
        dec_layers: decoder layers (FC-CLIP: 9; its DEC_LAYERS 10 counts the prediction from the learnable
            queries).
        pre_norm: pre-norm layers (Mask2Former ``PRE_NORM``; False in FC-CLIP and SEEM).
        mask_dim: channels of the mask features (256).
        enforce_input_project: 1×1 input projections even when ``in_channels == hidden_dim``.
        class_head: config or module scoring queries → B×N×(C+1) logits, called once on the queries of all
            predictions as ``class_head(query_feats B×N×C, region_feats, **class_inputs)``; queries are scored
            independently. ``region_feats`` (B×N×mask_dim) is None unless the head defines
            ``region_weights(mask_logits, (H, W)) -> B×Q×(H·W)``: pooling weights of each prediction's masks over
            the mask-feature grid. ``None`` predicts masks only (``pred_logits`` omitted).
        num_feature_levels: feature maps visited round-robin (3).
        dropout: attention / FFN dropout (0.0).
    """

    def __init__(self, in_channels: int = 256, hidden_dim: int = 256, num_queries: int = 100, nheads: int = 8,
                 dim_feedforward: int = 2048, dec_layers: int = 9, pre_norm: bool = False, mask_dim: int = 256,
                 enforce_input_project: bool = False, class_head: dict | nn.Module | None = None,
                 num_feature_levels: int = 3, dropout: float = 0.0) -> None:
        super().__init__()
        self.pe_layer = PositionEmbeddingSine(hidden_dim // 2, normalize=True)
        self.num_heads, self.num_layers, self.num_queries = nheads, dec_layers, num_queries
        self.num_feature_levels = num_feature_levels
        self.transformer_self_attention_layers = nn.ModuleList(
            [SelfAttentionLayer(hidden_dim, nheads, dropout, pre_norm) for _ in range(dec_layers)])
        self.transformer_cross_attention_layers = nn.ModuleList(
            [CrossAttentionLayer(hidden_dim, nheads, dropout, pre_norm) for _ in range(dec_layers)])
        self.transformer_ffn_layers = nn.ModuleList(
            [FFNLayer(hidden_dim, dim_feedforward, dropout, pre_norm) for _ in range(dec_layers)])
        self.decoder_norm = nn.LayerNorm(hidden_dim)
        self.query_feat = nn.Embedding(num_queries, hidden_dim)
        self.query_embed = nn.Embedding(num_queries, hidden_dim)
        self.level_embed = nn.Embedding(num_feature_levels, hidden_dim)
        self.input_proj = nn.ModuleList()
        for _ in range(num_feature_levels):
            if in_channels != hidden_dim or enforce_input_project:
                conv = nn.Conv2d(in_channels, hidden_dim, kernel_size=1)
                nn.init.kaiming_uniform_(conv.weight, a=1)  # detectron2 c2_xavier_fill
                nn.init.constant_(conv.bias, 0)
                self.input_proj.append(conv)
            else:
                self.input_proj.append(nn.Sequential())
        self.mask_embed = MLP(hidden_dim, hidden_dim, mask_dim, 3)
        self.class_head = MODELS.build(class_head) if isinstance(class_head, dict) else class_head

    # ------------------------------------------------------------------ forward
    def forward(self, multi_scale_features: Sequence[Tensor], mask_features: Tensor,
                class_inputs: Mapping[str, Any] | None = None,
                extra_queries: Mapping[str, tuple[Tensor, Tensor]] | None = None,
                self_attn_mask: Tensor | None = None) -> dict[str, Any]:
        """Decode the object queries (and any extra query groups).

        Args:
            multi_scale_features: ``num_feature_levels`` maps B×C×h×w, coarse to fine.
            mask_features: B×mask_dim×H×W per-pixel embeddings (stride 4).
            class_inputs: keyword arguments of the class head (e.g. ``text_classifier``, ``num_templates``).
            extra_queries: ``{group: (features B×N×C, positions B×N×C)}`` appended after the object queries.
            self_attn_mask: bool (Q+N)×(Q+N) or (B·heads)×(Q+N)×(Q+N), True = may not attend.

        Returns:
            ``pred_logits`` B×Q×(C+1) (with a class head), ``pred_masks`` B×Q×H×W, ``query_feats`` B×Q×C (the
            normalised last-layer queries), ``aux_outputs`` (one dict per earlier prediction, same keys) and,
            with extra query groups, ``extra = {group: {pred_masks, query_feats, aux_outputs}}``.
        """
        src, pos, sizes = self.memory(multi_scale_features)
        bs = src[0].shape[1]
        query_embed = self.query_embed.weight.unsqueeze(1).repeat(1, bs, 1)
        output = self.query_feat.weight.unsqueeze(1).repeat(1, bs, 1)
        groups = self._group_slices(extra_queries, bs)
        if extra_queries:
            output = torch.cat([output] + [f.transpose(0, 1) for f, _ in extra_queries.values()])
            query_embed = torch.cat([query_embed] + [p.transpose(0, 1) for _, p in extra_queries.values()])
        self_mask = self._expand_self_attn_mask(self_attn_mask, bs, output.shape[0])
        class_inputs = dict(class_inputs or {})

        weights = None
        if self.class_head is not None and hasattr(self.class_head, 'region_weights'):
            # pooling weights of every prediction's object queries, filled prediction by prediction
            weights = mask_features.new_empty(bs, (self.num_layers + 1) * self.num_queries,
                                              mask_features.shape[-2] * mask_features.shape[-1])
        predictions = [self._prediction_heads(output, mask_features, sizes[0], weights, 0)]
        for i in range(self.num_layers):
            level = i % self.num_feature_levels
            attn_mask = predictions[-1][2]
            output = self.transformer_cross_attention_layers[i](output, src[level], attn_mask, pos[level], query_embed)
            output = self.transformer_self_attention_layers[i](output, query_embed, self_mask)
            output = self.transformer_ffn_layers[i](output)
            last = i == self.num_layers - 1  # the last prediction feeds no further layer: no attention mask
            predictions.append(self._prediction_heads(output, mask_features,
                                                      None if last else sizes[(i + 1) % self.num_feature_levels],
                                                      weights, i + 1))
        logits = self._class_logits(predictions, mask_features, weights, class_inputs)
        return self._collect(predictions, logits, groups)

    def memory(self, multi_scale_features: Sequence[Tensor]) -> tuple[list[Tensor], list[Tensor], list[tuple]]:
        """Per level: projected features + level embedding (HW×B×C), sine positions (HW×B×C) and (H, W): what the
        masked cross-attention reads."""
        if len(multi_scale_features) != self.num_feature_levels:
            raise ValueError(f'expected {self.num_feature_levels} feature levels, got {len(multi_scale_features)}')
        src, pos, sizes = [], [], []
        for i, x in enumerate(multi_scale_features):
            sizes.append(tuple(x.shape[-2:]))
            pos.append(self.pe_layer(x).flatten(2).permute(2, 0, 1))
            src.append((self.input_proj[i](x).flatten(2) + self.level_embed.weight[i][None, :, None]).permute(2, 0, 1))
        return src, pos, sizes

    def _prediction_heads(self, output: Tensor, mask_features: Tensor, attn_size: tuple[int, int] | None,
                          weights: Tensor | None, step: int) -> tuple[Tensor, Tensor, Tensor | None]:
        """decoder_norm → masks (mask_embed · mask_features), the next layer's attention mask; the class head's
        pooling weights of the object queries' masks go into the shared buffer."""
        decoder_output = self.decoder_norm(output).transpose(0, 1)  # B × (Q+N) × C
        mask_embed = self.mask_embed(decoder_output)
        outputs_mask = torch.einsum('bqc,bchw->bqhw', mask_embed, mask_features)
        if weights is not None:
            q = self.num_queries
            weights[:, step * q:(step + 1) * q] = self.class_head.region_weights(outputs_mask[:, :q],
                                                                                 tuple(mask_features.shape[-2:]))
        attn = None if attn_size is None else masked_attention_mask(outputs_mask, attn_size, self.num_heads)
        return decoder_output, outputs_mask, attn

    def _class_logits(self, predictions: list[tuple], mask_features: Tensor, weights: Tensor | None,
                      class_inputs: dict[str, Any]) -> list[Tensor | None]:
        """One class-head call for the object queries of every prediction (the scores feed no layer)."""
        if self.class_head is None:
            return [None] * len(predictions)
        q = self.num_queries
        queries = torch.cat([p[0][:, :q] for p in predictions], dim=1)
        regions = None if weights is None else pool_with_weights(mask_features, weights)
        return list(self.class_head(queries, regions, **class_inputs).split(q, dim=1))

    # ------------------------------------------------------------------ query groups
    def _group_slices(self, extra_queries: Mapping[str, tuple[Tensor, Tensor]] | None,
                      batch: int) -> dict[str, slice]:
        slices, start = {}, self.num_queries
        for name, (feat, qpos) in (extra_queries or {}).items():
            if feat.dim() != 3 or feat.shape[0] != batch or feat.shape != qpos.shape:
                raise ValueError(f'extra query group {name!r}: features and positions must both be B×N×C with '
                                 f'B={batch}, got {tuple(feat.shape)} and {tuple(qpos.shape)}')
            slices[name] = slice(start, start + feat.shape[1])
            start += feat.shape[1]
        return slices

    def _expand_self_attn_mask(self, mask: Tensor | None, batch: int, length: int) -> Tensor | None:
        if mask is None:
            return None
        mask = mask.bool()
        if mask.dim() == 2:
            mask = mask.unsqueeze(0).expand(batch * self.num_heads, -1, -1)
        if tuple(mask.shape) != (batch * self.num_heads, length, length):
            raise ValueError(f'self_attn_mask must be {length}×{length} or {batch * self.num_heads}×{length}×{length} '
                             f'(B·heads×L×L), got {tuple(mask.shape)}')
        return mask

    def _collect(self, predictions: list[tuple], logits: list[Tensor | None],
                 groups: dict[str, slice]) -> dict[str, Any]:
        q = self.num_queries

        def object_part(pred: tuple, pred_logits: Tensor | None) -> dict[str, Any]:
            out = dict(pred_masks=pred[1][:, :q], query_feats=pred[0][:, :q])
            if pred_logits is not None:
                out['pred_logits'] = pred_logits
            return out

        result = object_part(predictions[-1], logits[-1])
        result['aux_outputs'] = [object_part(p, lg) for p, lg in zip(predictions[:-1], logits[:-1])]
        if groups:
            result['extra'] = {
                name: dict(pred_masks=predictions[-1][1][:, sl], query_feats=predictions[-1][0][:, sl],
                           aux_outputs=[dict(pred_masks=p[1][:, sl], query_feats=p[0][:, sl])
                                        for p in predictions[:-1]])
                for name, sl in groups.items()}
        return result
