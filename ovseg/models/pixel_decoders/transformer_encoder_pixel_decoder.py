"""MaskFormer's transformer-encoder FPN pixel decoder, as SEEM's Focal and DaViT configs use it (not deformable).

SEEM v1.0 ``modeling/vision/encoder/transformer_encoder_fpn.py`` (``MODEL.ENCODER.NAME: transformer_encoder_fpn``;
the same code as MaskFormer's ``TransformerEncoderPixelDecoder`` and mmdet's ``XTransformerEncoderPixelDecoder``):

* ``input_proj``: a 1×1 conv (with bias, no norm) of res5 to ``conv_dim``;
* ``transformer``: ``TransformerEncoderOnly`` → ``transformer.encoder.layers.i`` DETR encoder layers (post-norm,
  ReLU; sine positions added to queries and keys only), over the flattened res5 map;
* ``layer_4``: 3×3 conv + GN + ReLU of the encoder output (the top of the FPN);
* FPN top-down over res4 → res2: ``adapter_{3,2,1}`` (1×1 conv + GN, lateral) + *nearest* upsampling of the
  coarser map, then ``layer_{3,2,1}`` (3×3 conv + GN + ReLU);
* ``mask_features``: a 3×3 conv (with bias) of the stride-4 map to ``mask_dim``.

Names and init (detectron2 ``c2_xavier_fill`` for convs, Xavier-uniform for the encoder's matrices) are the
official ones, so SEEM's ``sem_seg_head.pixel_decoder.*`` keys load by prefix. SEEM's config: CONVS_DIM 512,
MASK_DIM 512, NORM GN, TRANSFORMER_ENC_LAYERS 6, and from ``MODEL.DECODER``: NHEADS 8, DIM_FEEDFORWARD 2048,
DROPOUT 0.0, PRE_NORM False.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch.nn.functional as F
from torch import Tensor, nn

from ovseg.models.layers import Conv2dNormAct, PositionEmbeddingSine, c2_xavier_fill
from ovseg.registry import MODELS

from .input_shape import resolve_input_shape

__all__ = ['TransformerEncoderLayer', 'TransformerEncoderOnly', 'TransformerEncoderPixelDecoder']


class TransformerEncoderLayer(nn.Module):
    """DETR encoder layer (sequence-first L×B×C): self-attention with positions on q/k, then a ReLU FFN.

    Post-norm by default (``normalize_before=False``, SEEM's ``PRE_NORM``); names ``self_attn``, ``linear1``,
    ``linear2``, ``norm1``, ``norm2`` — the same as ``torch.nn.TransformerEncoderLayer``'s.
    """

    def __init__(self, d_model: int, nhead: int, dim_feedforward: int = 2048, dropout: float = 0.0,
                 normalize_before: bool = False) -> None:
        super().__init__()
        self.self_attn = nn.MultiheadAttention(d_model, nhead, dropout=dropout)
        self.linear1 = nn.Linear(d_model, dim_feedforward)
        self.dropout = nn.Dropout(dropout)
        self.linear2 = nn.Linear(dim_feedforward, d_model)
        self.norm1 = nn.LayerNorm(d_model)
        self.norm2 = nn.LayerNorm(d_model)
        self.dropout1 = nn.Dropout(dropout)
        self.dropout2 = nn.Dropout(dropout)
        self.normalize_before = normalize_before

    def _ffn(self, x: Tensor) -> Tensor:
        return self.linear2(self.dropout(F.relu(self.linear1(x))))

    def forward(self, src: Tensor, pos: Tensor | None = None, key_padding_mask: Tensor | None = None) -> Tensor:
        if self.normalize_before:
            x = self.norm1(src)
            qk = x if pos is None else x + pos
            src = src + self.dropout1(self.self_attn(qk, qk, x, key_padding_mask=key_padding_mask,
                                                     need_weights=False)[0])
            return src + self.dropout2(self._ffn(self.norm2(src)))
        qk = src if pos is None else src + pos
        src = self.norm1(src + self.dropout1(self.self_attn(qk, qk, src, key_padding_mask=key_padding_mask,
                                                            need_weights=False)[0]))
        return self.norm2(src + self.dropout2(self._ffn(src)))


class TransformerEncoder(nn.Module):
    """``layers`` of :class:`TransformerEncoderLayer` and, for pre-norm, a final ``norm``."""

    def __init__(self, num_layers: int, d_model: int, normalize_before: bool = False, **layer_kwargs) -> None:
        super().__init__()
        self.layers = nn.ModuleList(TransformerEncoderLayer(d_model, normalize_before=normalize_before,
                                                            **layer_kwargs) for _ in range(num_layers))
        self.norm = nn.LayerNorm(d_model) if normalize_before else None

    def forward(self, src: Tensor, pos: Tensor | None = None, key_padding_mask: Tensor | None = None) -> Tensor:
        for layer in self.layers:
            src = layer(src, pos, key_padding_mask)
        return self.norm(src) if self.norm is not None else src


class TransformerEncoderOnly(nn.Module):
    """Flattens a B×C×H×W map, runs the encoder, restores the map (official name of the pixel decoder's
    ``transformer``; its matrices are Xavier-uniform initialised)."""

    def __init__(self, d_model: int = 512, nhead: int = 8, num_encoder_layers: int = 6,
                 dim_feedforward: int = 2048, dropout: float = 0.0, normalize_before: bool = False) -> None:
        super().__init__()
        self.encoder = TransformerEncoder(num_encoder_layers, d_model, normalize_before=normalize_before,
                                          nhead=nhead, dim_feedforward=dim_feedforward, dropout=dropout)
        for p in self.parameters():
            if p.dim() > 1:
                nn.init.xavier_uniform_(p)
        self.d_model, self.nhead = d_model, nhead

    def forward(self, src: Tensor, pos_embed: Tensor, mask: Tensor | None = None) -> Tensor:
        b, c, h, w = src.shape
        memory = self.encoder(src.flatten(2).permute(2, 0, 1), pos_embed.flatten(2).permute(2, 0, 1),
                              None if mask is None else mask.flatten(1))
        return memory.permute(1, 2, 0).reshape(b, c, h, w)


@MODELS.register_module()
class TransformerEncoderPixelDecoder(nn.Module):
    """Pixel decoder: transformer encoder on res5 + FPN over res4..res2 → (mask_features, multi-scale maps).

    Args:
        input_shape: ``{name: dict(channels=C, stride=S)}`` of the inputs (res2..res5; filled from the backbone
            by the segmentor).
        conv_dim / mask_dim: FPN width and mask-feature channels (SEEM CONVS_DIM / MASK_DIM: 512 / 512).
        norm: ``'GN'`` (GroupNorm(32, conv_dim), convs without bias) or ``''`` (no norm, convs with bias).
        transformer_enc_layers / transformer_nheads / transformer_dim_feedforward / transformer_dropout /
            transformer_pre_norm: 6 / 8 / 2048 / 0.0 / False in SEEM.
        in_channels / strides: alternative to ``input_shape`` (``{name: C}`` or a list for res2..; strides
            likewise, default 4/8/16/32).

    ``forward(features)`` returns ``(mask_features B×mask_dim×H/4×W/4, [stride-32, stride-16, stride-8 maps])``:
    the coarsest level first, as :class:`~ovseg.models.decoders.MaskedAttentionDecoder` expects and as
    :class:`MSDeformAttnPixelDecoder` returns, so the decoder can take either.
    """

    def __init__(self, input_shape: Mapping[str, Mapping[str, int]] | None = None, conv_dim: int = 512,
                 mask_dim: int = 512, norm: str = 'GN', transformer_enc_layers: int = 6, transformer_nheads: int = 8,
                 transformer_dim_feedforward: int = 2048, transformer_dropout: float = 0.0,
                 transformer_pre_norm: bool = False, in_channels: Mapping[str, int] | Sequence[int] | None = None,
                 strides: Mapping[str, int] | Sequence[int] = (4, 8, 16, 32)) -> None:
        super().__init__()
        if norm not in ('GN', ''):
            raise ValueError(f"norm must be 'GN' or '' (none), got {norm!r}")
        shapes = sorted(resolve_input_shape(input_shape, in_channels, strides).items(), key=lambda kv: kv[1]['stride'])
        if len(shapes) < 2:
            raise ValueError(f'need at least two input levels, got {[k for k, _ in shapes]}')
        self.in_features = [k for k, _ in shapes]  # high → low resolution (res2 .. res5)
        self.conv_dim, self.mask_dim = conv_dim, mask_dim
        self.maskformer_num_feature_levels = 3  # "always use 3 scales"
        use_bias = norm == ''

        def group_norm() -> nn.Module | None:
            return nn.GroupNorm(32, conv_dim) if norm == 'GN' else None

        lateral_convs, output_convs = [], []
        for idx, (_, shape) in enumerate(shapes[:-1]):
            lateral = Conv2dNormAct(shape['channels'], conv_dim, kernel_size=1, bias=use_bias, norm=group_norm())
            output = Conv2dNormAct(conv_dim, conv_dim, kernel_size=3, padding=1, bias=use_bias, norm=group_norm(),
                                   activation=nn.ReLU())
            c2_xavier_fill(lateral)
            c2_xavier_fill(output)
            self.add_module(f'adapter_{idx + 1}', lateral)
            self.add_module(f'layer_{idx + 1}', output)
            lateral_convs.append(lateral)
            output_convs.append(output)
        self.mask_features = nn.Conv2d(conv_dim, mask_dim, kernel_size=3, padding=1)
        c2_xavier_fill(self.mask_features)

        self.input_proj = nn.Conv2d(shapes[-1][1]['channels'], conv_dim, kernel_size=1)
        c2_xavier_fill(self.input_proj)
        self.transformer = TransformerEncoderOnly(d_model=conv_dim, nhead=transformer_nheads,
                                                  num_encoder_layers=transformer_enc_layers,
                                                  dim_feedforward=transformer_dim_feedforward,
                                                  dropout=transformer_dropout, normalize_before=transformer_pre_norm)
        self.pe_layer = PositionEmbeddingSine(conv_dim // 2, normalize=True)
        top = Conv2dNormAct(conv_dim, conv_dim, kernel_size=3, padding=1, bias=use_bias, norm=group_norm(),
                            activation=nn.ReLU())
        c2_xavier_fill(top)
        self.add_module(f'layer_{len(shapes)}', top)
        # top-down order (low → high resolution); the top level has no lateral conv
        self.lateral_convs: list[nn.Module | None] = [None] + lateral_convs[::-1]
        self.output_convs: list[nn.Module] = [top] + output_convs[::-1]

    def forward(self, features: Mapping[str, Tensor]) -> tuple[Tensor, list[Tensor]]:
        """features (the ``in_features`` maps) → (mask_features, ``maskformer_num_feature_levels`` maps,
        coarsest first)."""
        multi_scale: list[Tensor] = []
        y = None
        for idx, name in enumerate(self.in_features[::-1]):
            x = features[name]
            if self.lateral_convs[idx] is None:
                y = self.output_convs[idx](self.transformer(self.input_proj(x), self.pe_layer(x)))
            else:
                cur = self.lateral_convs[idx](x)
                y = self.output_convs[idx](cur + F.interpolate(y, size=cur.shape[-2:], mode='nearest'))
            if len(multi_scale) < self.maskformer_num_feature_levels:
                multi_scale.append(y)
        return self.mask_features(y), multi_scale
