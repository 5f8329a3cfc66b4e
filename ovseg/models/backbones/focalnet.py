"""FocalNet backbone as SEEM / X-Decoder use it: one module for both of SEEM v1's FocalNet variants.

SEEM v1.0 (``UX-Decoder/Segment-Everything-Everywhere-All-At-Once``, branch ``v1.0``) ships two FocalNet files:

* ``modeling/vision/backbone/focal.py`` (``BACKBONE.NAME: focal``, Focal-L in
  ``configs/seem/focall_unicl_lang_v1.yaml``);
* ``modeling/vision/backbone/focal_dw.py`` (``BACKBONE.NAME: focal_dw``, Focal-T in
  ``configs/seem/focalt_unicl_lang_v1.yaml``; mmdet's ``projects/XDecoder/xdecoder/focalnet.py`` is the same code).

They differ only inside a block and in the stem padding; ``variant='focal'|'focal_dw'`` selects one:

========================  ====================================  =============================================
                          ``focal``                             ``focal_dw``
========================  ====================================  =============================================
depthwise convs           none                                  ``dw1`` (before modulation) and ``dw2`` (before
                                                                the MLP), 3×3 depthwise with bias, added as
                                                                residuals: ``x = x + dw(x)``
post-LN (``use_postln``)  normalises the *branch*:              normalises *after* the residual add:
                          ``x = x + γ1·norm1(mod(x))``,         ``x = norm1(x + γ1·mod(x))``,
                          ``x = x + γ2·norm2(mlp(x))``          ``x = norm2(x + γ2·mlp(x))``
conv stem (7×7, stride 4) padding 2                             padding 3
========================  ====================================  =============================================

Everything else is shared: the overlapping conv patch embedding (``use_conv_embed``; 3×3 stride-2 convs between
stages), focal modulation (``modulation.{f,h,proj,focal_layers.k.0}``; ``scaling_modulator`` divides the aggregated
context by ``focal_level + 1``, timm's ``normalize_modulator``), layer scale ``gamma_1/gamma_2`` (init 1e-4) and
one LayerNorm ``norm{i}`` per output. Parameter names are SEEM's, so a SEEM checkpoint's ``backbone.*`` keys load by
prefix. Tokens are kept channels-last (B×H×W×C) inside a stage, as the official B×L×C layout; ``Linear`` weights
keep their official 2-D shapes.

Like SEEM's ``PatchEmbed``, the stem pads the input on the right/bottom to a multiple of 4 and each downsampling
pads to a multiple of 2, so any input size works (outputs are ``ceil(H / stride)``); inputs padded to a multiple of
32 (SEEM's ``SIZE_DIVISIBILITY``) need no padding. Freezing is done by the core trainable-set API, so there is no
``frozen_stages``.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from mmengine.model import BaseModule
from timm.layers import DropPath, trunc_normal_
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from ovseg.registry import MODELS

__all__ = ['FOCALNET_PRESETS', 'FocalNet']

#: Full-size SEEM v1 backbones, from ``MODEL.BACKBONE`` of the SEEM v1.0 yamls (``configs/seem/focall_unicl_lang_v1
#: .yaml`` and ``configs/seem/focalt_unicl_lang_v1.yaml``): PATCH_SIZE 4, MLP_RATIO 4.0, DROP_RATE 0.0,
#: DROP_PATH_RATE 0.3, PATCH_NORM True, USE_CONV_EMBED True, SCALING_MODULATOR True, USE_CHECKPOINT False,
#: USE_POSTLN true, USE_POSTLN_IN_MODULATION false, USE_LAYERSCALE True, OUT_INDICES [0, 1, 2, 3] in both;
#: they differ in NAME (focal / focal_dw), EMBED_DIM, DEPTHS and FOCAL_LEVELS. Parameter counts (checked by
#: ``tests/models/backbones/test_focalnet.py``): Focal-L 205,746,936; Focal-T 29,922,288.
FOCALNET_PRESETS: dict[str, dict[str, Any]] = {
    'focall': dict(variant='focal', embed_dim=192, depths=(2, 2, 18, 2), focal_levels=(4, 4, 4, 4),
                   focal_windows=(3, 3, 3, 3), patch_size=4, mlp_ratio=4.0, drop_rate=0.0, drop_path_rate=0.3,
                   patch_norm=True, use_conv_embed=True, scaling_modulator=True, use_postln=True,
                   use_postln_in_modulation=False, use_layerscale=True, out_indices=(0, 1, 2, 3)),
    'focalt': dict(variant='focal_dw', embed_dim=96, depths=(2, 2, 6, 2), focal_levels=(3, 3, 3, 3),
                   focal_windows=(3, 3, 3, 3), patch_size=4, mlp_ratio=4.0, drop_rate=0.0, drop_path_rate=0.3,
                   patch_norm=True, use_conv_embed=True, scaling_modulator=True, use_postln=True,
                   use_postln_in_modulation=False, use_layerscale=True, out_indices=(0, 1, 2, 3)),
}

VARIANTS = ('focal', 'focal_dw')


class Mlp(nn.Module):
    """``fc1`` → GELU → dropout → ``fc2`` → dropout (official ``Mlp``)."""

    def __init__(self, dim: int, hidden: int, drop: float = 0.0) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)
        self.drop = nn.Dropout(drop)

    def forward(self, x: Tensor) -> Tensor:
        return self.drop(self.fc2(self.drop(self.act(self.fc1(x)))))


class FocalModulation(nn.Module):
    """Focal modulation on channels-last tokens B×H×W×C (official ``FocalModulation``).

    ``f`` (Linear) gives the query, the context and ``focal_level + 1`` gates; ``focal_level`` depthwise convs
    (kernel ``focal_window + 2k``, no bias) + GELU aggregate the context hierarchically, a global average adds the
    last level; ``h`` (1×1 conv) turns the gated sum into the modulator; ``proj`` (Linear) projects ``q · h(ctx)``.
    """

    def __init__(self, dim: int, focal_level: int = 2, focal_window: int = 7, focal_factor: int = 2,
                 proj_drop: float = 0.0, use_postln_in_modulation: bool = False,
                 scaling_modulator: bool = False) -> None:
        super().__init__()
        self.dim, self.focal_level = dim, focal_level
        self.scaling_modulator = scaling_modulator
        self.use_postln_in_modulation = use_postln_in_modulation
        self.f = nn.Linear(dim, 2 * dim + focal_level + 1)
        self.h = nn.Conv2d(dim, dim, kernel_size=1)
        self.act = nn.GELU()
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)
        self.focal_layers = nn.ModuleList()
        for k in range(focal_level):
            kernel = focal_factor * k + focal_window
            self.focal_layers.append(nn.Sequential(
                nn.Conv2d(dim, dim, kernel_size=kernel, groups=dim, padding=kernel // 2, bias=False), nn.GELU()))
        if use_postln_in_modulation:
            self.ln = nn.LayerNorm(dim)

    def forward(self, x: Tensor) -> Tensor:
        c = x.shape[-1]
        x = self.f(x).permute(0, 3, 1, 2)
        q, ctx, gates = torch.split(x, (c, c, self.focal_level + 1), 1)
        ctx_all = 0
        for level, layer in enumerate(self.focal_layers):
            ctx = layer(ctx)
            ctx_all = ctx_all + ctx * gates[:, level:level + 1]
        ctx_global = self.act(ctx.mean((2, 3), keepdim=True))
        ctx_all = ctx_all + ctx_global * gates[:, self.focal_level:]
        if self.scaling_modulator:
            ctx_all = ctx_all / (self.focal_level + 1)
        out = (q * self.h(ctx_all)).permute(0, 2, 3, 1)
        if self.use_postln_in_modulation:
            out = self.ln(out)
        return self.proj_drop(self.proj(out))


class FocalModulationBlock(nn.Module):
    """One FocalNet block on channels-last tokens; ``depthwise=True`` is the ``focal_dw`` block (see module doc)."""

    def __init__(self, dim: int, mlp_ratio: float = 4.0, drop: float = 0.0, drop_path: float = 0.0,
                 focal_level: int = 2, focal_window: int = 9, use_postln: bool = False,
                 use_postln_in_modulation: bool = False, scaling_modulator: bool = False,
                 use_layerscale: bool = False, layerscale_value: float = 1e-4, depthwise: bool = False) -> None:
        super().__init__()
        self.use_postln, self.depthwise = use_postln, depthwise
        if depthwise:
            self.dw1 = nn.Conv2d(dim, dim, kernel_size=3, padding=1, groups=dim)
        self.norm1 = nn.LayerNorm(dim)
        self.modulation = FocalModulation(dim, focal_level=focal_level, focal_window=focal_window, proj_drop=drop,
                                          use_postln_in_modulation=use_postln_in_modulation,
                                          scaling_modulator=scaling_modulator)
        if depthwise:
            self.dw2 = nn.Conv2d(dim, dim, kernel_size=3, padding=1, groups=dim)
        self.drop_path = DropPath(drop_path) if drop_path > 0.0 else nn.Identity()
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), drop)
        if use_layerscale:
            self.gamma_1 = nn.Parameter(layerscale_value * torch.ones(dim))
            self.gamma_2 = nn.Parameter(layerscale_value * torch.ones(dim))
        else:
            self.gamma_1 = self.gamma_2 = 1.0

    @staticmethod
    def _dw_residual(conv: nn.Conv2d, x: Tensor) -> Tensor:
        """``x + conv(x)`` for channels-last x (the conv runs channels-first)."""
        return x + conv(x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)

    def forward(self, x: Tensor) -> Tensor:
        """x: B×H×W×C → B×H×W×C."""
        if self.depthwise:
            return self._forward_dw(x)
        shortcut = x
        x = self.modulation(x if self.use_postln else self.norm1(x))
        if self.use_postln:
            x = self.norm1(x)
        x = shortcut + self.drop_path(self.gamma_1 * x)
        if self.use_postln:
            return x + self.drop_path(self.gamma_2 * self.norm2(self.mlp(x)))
        return x + self.drop_path(self.gamma_2 * self.mlp(self.norm2(x)))

    def _forward_dw(self, x: Tensor) -> Tensor:
        x = self._dw_residual(self.dw1, x)
        shortcut = x
        x = shortcut + self.drop_path(self.gamma_1 * self.modulation(x if self.use_postln else self.norm1(x)))
        if self.use_postln:
            x = self.norm1(x)
        x = self._dw_residual(self.dw2, x)
        if self.use_postln:
            return self.norm2(x + self.drop_path(self.gamma_2 * self.mlp(x)))
        return x + self.drop_path(self.gamma_2 * self.mlp(self.norm2(x)))


class PatchEmbed(nn.Module):
    """Patch embedding / downsampling (official ``PatchEmbed``): pad to a multiple of ``patch_size``, conv, LN.

    With ``use_conv_embed`` the stem is a 7×7 stride-4 conv (padding ``stem_padding``: 2 in ``focal.py``, 3 in
    ``focal_dw.py``) and a downsampling is a 3×3 stride-2 conv (padding 1); otherwise a patchify conv.
    """

    def __init__(self, patch_size: int = 4, in_chans: int = 3, embed_dim: int = 96, norm: bool = True,
                 use_conv_embed: bool = False, is_stem: bool = False, stem_padding: int = 2) -> None:
        super().__init__()
        self.patch_size = patch_size
        if use_conv_embed:
            kernel, padding, stride = (7, stem_padding, 4) if is_stem else (3, 1, 2)
            self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=kernel, stride=stride, padding=padding)
        else:
            self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=patch_size, stride=patch_size)
        self.norm = nn.LayerNorm(embed_dim) if norm else None

    def forward(self, x: Tensor) -> Tensor:
        """x: B×C×H×W → channels-last B×h×w×embed_dim."""
        h, w = x.shape[-2:]
        p = self.patch_size
        if h % p or w % p:
            x = F.pad(x, (0, (p - w % p) % p, 0, (p - h % p) % p))
        x = self.proj(x).permute(0, 2, 3, 1)
        return self.norm(x) if self.norm is not None else x


class BasicLayer(nn.Module):
    """One stage: ``blocks`` then the optional ``downsample`` (a stride-2 ``PatchEmbed``) to the next stage."""

    def __init__(self, dim: int, depth: int, drop_path: Sequence[float], downsample: bool, use_conv_embed: bool,
                 patch_norm: bool, use_checkpoint: bool, **block_kwargs: Any) -> None:
        super().__init__()
        self.use_checkpoint = use_checkpoint
        self.blocks = nn.ModuleList(FocalModulationBlock(dim, drop_path=drop_path[i], **block_kwargs)
                                    for i in range(depth))
        self.downsample = (PatchEmbed(2, dim, 2 * dim, norm=patch_norm, use_conv_embed=use_conv_embed)
                           if downsample else None)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor | None]:
        """x: B×H×W×C → (stage output B×H×W×C, input of the next stage or None)."""
        for blk in self.blocks:
            if self.use_checkpoint and torch.is_grad_enabled():
                x = checkpoint(blk, x, use_reentrant=False)
            else:
                x = blk(x)
        if self.downsample is None:
            return x, None
        return x, self.downsample(x.permute(0, 3, 1, 2))


@MODELS.register_module()
class FocalNet(BaseModule):
    """SEEM's FocalNet (``focal`` / ``focal_dw``) → ``{res2..res5}`` at strides 4/8/16/32.

    Args:
        preset: ``'focall'`` / ``'focalt'`` (:data:`FOCALNET_PRESETS`); explicit arguments override it. Without a
            preset the arguments default to Focal-T's (``'focalt'``).
        variant: ``'focal'`` (SEEM ``focal.py``) or ``'focal_dw'`` (SEEM ``focal_dw.py``), see the module doc.
        embed_dim / depths: width of stage 1 (stage i has ``embed_dim·2^i`` channels) and blocks per stage.
        focal_levels / focal_windows: per stage; the kernel of level k is ``focal_window + 2k``.
        patch_size: stem stride (4). mlp_ratio: MLP hidden width / dim (4.0).
        drop_rate / drop_path_rate: dropout and the maximum stochastic depth (linearly increasing over blocks).
        patch_norm: LayerNorm after each patch embedding. use_conv_embed: overlapping conv embeddings.
        use_postln / use_postln_in_modulation / scaling_modulator / use_layerscale / layerscale_value: official flags.
        out_indices: stages whose output (after its ``norm{i}``) is returned as ``res{i+2}``.
        use_checkpoint: gradient checkpointing of every block (SEEM ``USE_CHECKPOINT``).
        in_chans: input channels (3).

    Attributes ``output_channels`` / ``output_strides`` give the returned maps' channels and strides.
    """

    def __init__(self, preset: str | None = None, *, variant: str | None = None, embed_dim: int | None = None,
                 depths: Sequence[int] | None = None, focal_levels: Sequence[int] | None = None,
                 focal_windows: Sequence[int] | None = None, patch_size: int | None = None,
                 mlp_ratio: float | None = None, drop_rate: float | None = None,
                 drop_path_rate: float | None = None, patch_norm: bool | None = None,
                 use_conv_embed: bool | None = None, use_postln: bool | None = None,
                 use_postln_in_modulation: bool | None = None, scaling_modulator: bool | None = None,
                 use_layerscale: bool | None = None, layerscale_value: float = 1e-4,
                 out_indices: Sequence[int] | None = None, use_checkpoint: bool = False, in_chans: int = 3,
                 init_cfg: dict | None = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if preset is not None and preset not in FOCALNET_PRESETS:
            raise KeyError(f'unknown FocalNet preset {preset!r}; known: {sorted(FOCALNET_PRESETS)}')
        given = dict(variant=variant, embed_dim=embed_dim, depths=depths, focal_levels=focal_levels,
                     focal_windows=focal_windows, patch_size=patch_size, mlp_ratio=mlp_ratio, drop_rate=drop_rate,
                     drop_path_rate=drop_path_rate, patch_norm=patch_norm, use_conv_embed=use_conv_embed,
                     use_postln=use_postln, use_postln_in_modulation=use_postln_in_modulation,
                     scaling_modulator=scaling_modulator, use_layerscale=use_layerscale, out_indices=out_indices)
        cfg = {**FOCALNET_PRESETS[preset or 'focalt'], **{k: v for k, v in given.items() if v is not None}}
        if cfg['variant'] not in VARIANTS:
            raise ValueError(f"variant must be one of {VARIANTS}, got {cfg['variant']!r}")
        depths = tuple(int(d) for d in cfg['depths'])
        num_stages = len(depths)
        focal_levels, focal_windows = tuple(cfg['focal_levels']), tuple(cfg['focal_windows'])
        if len(focal_levels) != num_stages or len(focal_windows) != num_stages:
            raise ValueError(f'focal_levels {focal_levels} / focal_windows {focal_windows} need one entry per '
                             f'stage ({num_stages})')
        self.out_indices = tuple(int(i) for i in cfg['out_indices'])
        if not self.out_indices or any(not 0 <= i < num_stages for i in self.out_indices):
            raise ValueError(f'out_indices must be a non-empty subset of 0..{num_stages - 1}, got {self.out_indices}')
        self.variant, self.depths, self.embed_dim = cfg['variant'], depths, int(cfg['embed_dim'])
        self.num_layers = num_stages
        self.num_features = [self.embed_dim * 2 ** i for i in range(num_stages)]
        self.use_checkpoint = use_checkpoint

        self.patch_embed = PatchEmbed(cfg['patch_size'], in_chans, self.embed_dim, norm=cfg['patch_norm'],
                                      use_conv_embed=cfg['use_conv_embed'], is_stem=True,
                                      stem_padding=3 if self.variant == 'focal_dw' else 2)
        self.pos_drop = nn.Dropout(cfg['drop_rate'])
        total = sum(depths)
        dpr = [cfg['drop_path_rate'] * i / (total - 1) if total > 1 else 0.0 for i in range(total)]  # linspace
        self.layers = nn.ModuleList()
        for i in range(num_stages):
            self.layers.append(BasicLayer(
                self.num_features[i], depths[i], dpr[sum(depths[:i]):sum(depths[:i + 1])],
                downsample=i < num_stages - 1, use_conv_embed=cfg['use_conv_embed'], patch_norm=cfg['patch_norm'],
                use_checkpoint=use_checkpoint, mlp_ratio=cfg['mlp_ratio'], drop=cfg['drop_rate'],
                focal_level=focal_levels[i], focal_window=focal_windows[i], use_postln=cfg['use_postln'],
                use_postln_in_modulation=cfg['use_postln_in_modulation'],
                scaling_modulator=cfg['scaling_modulator'], use_layerscale=cfg['use_layerscale'],
                layerscale_value=layerscale_value, depthwise=self.variant == 'focal_dw'))
        for i in self.out_indices:
            self.add_module(f'norm{i}', nn.LayerNorm(self.num_features[i]))
        self.output_channels = {f'res{i + 2}': self.num_features[i] for i in self.out_indices}
        self.output_strides = {f'res{i + 2}': cfg['patch_size'] * 2 ** i for i in self.out_indices}
        self.apply(self._init_module)

    @staticmethod
    def _init_module(m: nn.Module) -> None:
        """Official ``init_weights``: truncated-normal(0.02) Linear weights, zero biases, unit LayerNorms."""
        if isinstance(m, nn.Linear):
            trunc_normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        """x: B×in_chans×H×W → ``{res{i+2}: B×C_i×ceil(H/s_i)×ceil(W/s_i)}`` for i in ``out_indices``."""
        if x.dim() != 4:
            raise ValueError(f'FocalNet takes B×C×H×W input, got shape {tuple(x.shape)}')
        x = self.pos_drop(self.patch_embed(x))
        outs: dict[str, Tensor] = {}
        for i, layer in enumerate(self.layers):
            x_out, x = layer(x)
            if i in self.out_indices:
                outs[f'res{i + 2}'] = getattr(self, f'norm{i}')(x_out).permute(0, 3, 1, 2).contiguous()
            if x is None or i >= max(self.out_indices):
                break
        return outs
