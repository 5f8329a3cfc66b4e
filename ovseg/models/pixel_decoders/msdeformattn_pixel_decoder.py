"""Mask2Former's multi-scale deformable-attention pixel decoder, as FC-CLIP uses it.

A deformable transformer encoder mixes res3..res5; one FPN level adds res2; a 1×1 conv gives the
stride-4 mask features. Attribute names mirror the official module so a released checkpoint's
``sem_seg_head.pixel_decoder.*`` keys load into ``pixel_decoder.*`` by prefix.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ovseg.models.layers import Conv2dNormAct, MSDeformAttn, PositionEmbeddingSine, c2_xavier_fill
from ovseg.registry import MODELS

from .input_shape import resolve_input_shape


class MSDeformAttnEncoderLayer(nn.Module):
    """Post-norm deformable self-attention + ReLU FFN."""

    def __init__(self, d_model: int = 256, d_ffn: int = 1024, dropout: float = 0.0, n_levels: int = 3,
                 n_heads: int = 8, n_points: int = 4) -> None:
        super().__init__()
        self.self_attn = MSDeformAttn(d_model, n_levels, n_heads, n_points)
        self.dropout1 = nn.Dropout(dropout)
        self.norm1 = nn.LayerNorm(d_model)
        self.linear1 = nn.Linear(d_model, d_ffn)
        self.dropout2 = nn.Dropout(dropout)
        self.linear2 = nn.Linear(d_ffn, d_model)
        self.dropout3 = nn.Dropout(dropout)
        self.norm2 = nn.LayerNorm(d_model)

    def forward(self, src: Tensor, pos: Tensor, reference_points: Tensor,
                spatial_shapes: Sequence[tuple[int, int]]) -> Tensor:
        src = self.norm1(src + self.dropout1(self.self_attn(src + pos, reference_points, src, spatial_shapes)))
        ffn = self.linear2(self.dropout2(F.relu(self.linear1(src))))
        return self.norm2(src + self.dropout3(ffn))


class MSDeformAttnEncoder(nn.Module):
    """Stack of encoder layers over the flattened multi-level features."""

    def __init__(self, num_layers: int, **layer_kwargs) -> None:
        super().__init__()
        self.layers = nn.ModuleList([MSDeformAttnEncoderLayer(**layer_kwargs) for _ in range(num_layers)])

    @staticmethod
    def reference_points(spatial_shapes: Sequence[tuple[int, int]], batch: int, device) -> Tensor:
        """Pixel-centre reference points of every level, repeated over levels (valid ratios are 1)."""
        refs = []
        for h, w in spatial_shapes:
            ys, xs = torch.meshgrid(torch.linspace(0.5, h - 0.5, h, device=device),
                                    torch.linspace(0.5, w - 0.5, w, device=device), indexing='ij')
            refs.append(torch.stack((xs.reshape(-1) / w, ys.reshape(-1) / h), -1))
        ref = torch.cat(refs, 0)[None, :, None, :]
        return ref.expand(batch, -1, len(spatial_shapes), -1)

    def forward(self, src: Tensor, pos: Tensor, spatial_shapes: Sequence[tuple[int, int]]) -> Tensor:
        ref = self.reference_points(spatial_shapes, src.shape[0], src.device)
        for layer in self.layers:
            src = layer(src, pos, ref, spatial_shapes)
        return src


class MSDeformAttnTransformerEncoderOnly(nn.Module):
    """Flattens levels, adds level embeddings, runs the encoder (official name: ``transformer``)."""

    def __init__(self, d_model: int = 256, nhead: int = 8, num_encoder_layers: int = 6,
                 dim_feedforward: int = 1024, dropout: float = 0.0, num_feature_levels: int = 3,
                 enc_n_points: int = 4) -> None:
        super().__init__()
        self.encoder = MSDeformAttnEncoder(num_encoder_layers, d_model=d_model, d_ffn=dim_feedforward,
                                           dropout=dropout, n_levels=num_feature_levels, n_heads=nhead,
                                           n_points=enc_n_points)
        self.level_embed = nn.Parameter(torch.empty(num_feature_levels, d_model))
        nn.init.normal_(self.level_embed)
        for p in self.parameters():
            if p.dim() > 1 and p is not self.level_embed:
                nn.init.xavier_uniform_(p)
        for m in self.modules():
            if isinstance(m, MSDeformAttn):
                m.reset_parameters()

    def forward(self, srcs: list[Tensor], pos_embeds: list[Tensor]):
        shapes = [(int(s.shape[2]), int(s.shape[3])) for s in srcs]
        src_flat = torch.cat([s.flatten(2).transpose(1, 2) for s in srcs], 1)
        pos_flat = torch.cat([p.flatten(2).transpose(1, 2) + self.level_embed[i].view(1, 1, -1)
                              for i, p in enumerate(pos_embeds)], 1)
        return self.encoder(src_flat, pos_flat, shapes), shapes


@MODELS.register_module()
class MSDeformAttnPixelDecoder(nn.Module):
    """Pixel decoder: deformable encoder on res3..res5 + FPN on res2 → (mask_features, multi-scale maps).

    Args:
        input_shape: ``{name: dict(channels=C, stride=S)}`` for res2..res5 (filled from the backbone).
        conv_dim / mask_dim: 256 / 256 in FC-CLIP (SEM_SEG_HEAD.CONVS_DIM / MASK_DIM).
        norm: 'GN' (GroupNorm(32, conv_dim)) as in the official config.
        transformer_in_features: the encoder's inputs, res3..res5.
        transformer_enc_layers / nheads / dim_feedforward / dropout / num_points: 6 / 8 / 1024 / 0 / 4.
        common_stride: stride of the mask features (4).
        in_channels / strides: alternative to ``input_shape``: channels as ``{name: C}`` or a list for
            res2..res5, strides likewise (default 4/8/16/32).
    """

    def __init__(self, input_shape: Mapping[str, Mapping[str, int]] | None = None, conv_dim: int = 256,
                 mask_dim: int = 256, norm: str = 'GN',
                 transformer_in_features: Sequence[str] = ('res3', 'res4', 'res5'),
                 transformer_enc_layers: int = 6, transformer_nheads: int = 8,
                 transformer_dim_feedforward: int = 1024, transformer_dropout: float = 0.0,
                 num_points: int = 4, common_stride: int = 4,
                 in_channels: Mapping[str, int] | Sequence[int] | None = None,
                 strides: Mapping[str, int] | Sequence[int] = (4, 8, 16, 32)) -> None:
        super().__init__()
        input_shape = self._resolve_input_shape(input_shape, in_channels, strides)
        if norm not in ('GN', ''):
            raise ValueError(f"norm must be 'GN' or '' (none), got {norm!r}")
        missing = [f for f in transformer_in_features if f not in input_shape]
        if missing:
            raise KeyError(f'input_shape lacks {missing}; it has {sorted(input_shape)}')
        shapes = sorted(input_shape.items(), key=lambda kv: kv[1]['stride'])
        self.in_features = [k for k, _ in shapes]
        self.conv_dim, self.mask_dim = conv_dim, mask_dim
        tr_shapes = [(k, v) for k, v in shapes if k in transformer_in_features]
        self.transformer_in_features = [k for k, _ in tr_shapes]  # low → high stride
        self.transformer_feature_strides = [v['stride'] for _, v in tr_shapes]
        self.transformer_num_feature_levels = len(tr_shapes)

        def group_norm(ch: int) -> nn.Module | None:
            return nn.GroupNorm(32, ch) if norm == 'GN' else None

        # Highest-stride level first (res5, res4, res3), as in the official module.
        self.input_proj = nn.ModuleList()
        for _, v in tr_shapes[::-1]:
            proj = nn.Sequential(nn.Conv2d(v['channels'], conv_dim, kernel_size=1), nn.GroupNorm(32, conv_dim))
            nn.init.xavier_uniform_(proj[0].weight, gain=1)
            nn.init.constant_(proj[0].bias, 0)
            self.input_proj.append(proj)
        self.transformer = MSDeformAttnTransformerEncoderOnly(
            d_model=conv_dim, nhead=transformer_nheads, num_encoder_layers=transformer_enc_layers,
            dim_feedforward=transformer_dim_feedforward, dropout=transformer_dropout,
            num_feature_levels=self.transformer_num_feature_levels, enc_n_points=num_points)
        self.pe_layer = PositionEmbeddingSine(conv_dim // 2, normalize=True)
        self.mask_features = nn.Conv2d(conv_dim, mask_dim, kernel_size=1)
        c2_xavier_fill(self.mask_features)
        self.maskformer_num_feature_levels = 3
        self.common_stride = common_stride
        min_stride = min(self.transformer_feature_strides)
        self.num_fpn_levels = int(math.log2(min_stride) - math.log2(common_stride))
        self.lateral_convs, self.output_convs = [], []
        for idx, name in enumerate(self.in_features[:self.num_fpn_levels]):
            ch = input_shape[name]['channels']
            lateral = Conv2dNormAct(ch, conv_dim, kernel_size=1, bias=norm == '', norm=group_norm(conv_dim))
            output = Conv2dNormAct(conv_dim, conv_dim, kernel_size=3, padding=1, bias=norm == '',
                                   norm=group_norm(conv_dim), activation=nn.ReLU())
            c2_xavier_fill(lateral)
            c2_xavier_fill(output)
            self.add_module(f'adapter_{idx + 1}', lateral)
            self.add_module(f'layer_{idx + 1}', output)
            self.lateral_convs.append(lateral)
            self.output_convs.append(output)
        # official order: from the highest-resolution FPN level down
        self.lateral_convs = self.lateral_convs[::-1]
        self.output_convs = self.output_convs[::-1]

    _resolve_input_shape = staticmethod(resolve_input_shape)

    def forward(self, features: dict[str, Tensor]) -> tuple[Tensor, list[Tensor]]:
        """features res2..res5 → (mask_features B×mask_dim×H/4×W/4, [1/32, 1/16, 1/8] maps).

        Runs in fp32 even inside autocast, like the official ``@autocast(enabled=False)``.
        """
        device_type = next(iter(features.values())).device.type
        with torch.autocast(device_type=device_type, enabled=False):
            srcs, pos = [], []
            for idx, name in enumerate(self.transformer_in_features[::-1]):
                x = features[name].float()
                srcs.append(self.input_proj[idx](x))
                pos.append(self.pe_layer(x))
            memory, shapes = self.transformer(srcs, pos)
            b = memory.shape[0]
            sizes = [h * w for h, w in shapes]
            out = [z.transpose(1, 2).reshape(b, -1, h, w)
                   for z, (h, w) in zip(memory.split(sizes, dim=1), shapes)]
            for idx, name in enumerate(self.in_features[:self.num_fpn_levels][::-1]):
                x = features[name].float()
                cur = self.lateral_convs[idx](x)
                y = cur + F.interpolate(out[-1], size=cur.shape[-2:], mode='bilinear', align_corners=False)
                out.append(self.output_convs[idx](y))
            multi_scale = out[:self.maskformer_num_feature_levels]
            return self.mask_features(out[-1]), multi_scale
