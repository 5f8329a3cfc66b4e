"""InternViT, the vision encoder of InternVL2.5 / InternVL3 and so of the Sa2VA InternVL-family releases.

Why an own implementation: the released Sa2VA folders ship it only as remote code (``modeling_intern_vit.py``,
loaded with ``trust_remote_code``), which breaks on current transformers. This module keeps the *parameter
names* of that file so a released ``vision_model.*`` state dict loads with no rename (see
``release_names.py``), and its numerics are checked against transformers' own ``InternVLVisionModel``
(``tests/projects/sa2va_sft/test_intern_vit.py``).

Facts taken from OpenGVLab's ``modeling_intern_vit.py`` (as vendored in Sa2VA's ``hf/models``):

* embeddings: ``class_embedding`` (1, 1, C), ``patch_embedding`` (Conv2d 3→C, kernel = stride = patch),
  ``position_embedding`` (1, 1 + (image_size / patch)², C); the patch part is resized bicubically
  (``align_corners=False``, in float32) to the input's patch grid, the CLS position is kept;
* each layer: ``x = x + drop_path(attn(norm1(x)) * ls1)``, then ``x = x + drop_path(mlp(norm2(x)) * ls2)``;
  ``ls1`` / ``ls2`` are plain parameters (no ``.gamma`` / ``.g_weight`` suffix), initialised to
  ``initializer_factor``;
* attention: one fused ``qkv`` Linear (q, k, v stacked in that order on the output dim), optional RMSNorm
  ``q_norm`` / ``k_norm`` over the full width C (``qk_normalization``, eps = ``layer_norm_eps``), scaled
  dot-product with scale head_dim^-0.5, ``proj`` Linear, dropout ``dropout`` after it;
* norms: ``layer_norm`` (``nn.LayerNorm``) or ``rms_norm`` (RMSNorm computed in float32);
* stochastic depth: per-layer rate ``linspace(0, drop_path_rate, num_hidden_layers)``, timm's ``DropPath``
  (per sample, rescaled by 1 / keep);
* no final norm; ``hidden_states`` are the embedding output plus every layer's output.
"""
from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
import torch.utils.checkpoint
from torch import Tensor, nn

from ovseg.registry import MODELS

logger = logging.getLogger(__name__)

__all__ = ['InternVisionConfig', 'InternVisionModel', 'InternVisionOutput', 'RMSNorm', 'DropPath']

NORM_TYPES = ('layer_norm', 'rms_norm')

#: Activation names of transformers' ``ACT2FN`` that InternViT configs use (the release: 'gelu' = exact erf GELU).
_ACTIVATIONS: dict[str, Any] = {
    'gelu': lambda: nn.GELU(),
    'gelu_new': lambda: nn.GELU(approximate='tanh'),
    'gelu_pytorch_tanh': lambda: nn.GELU(approximate='tanh'),
    'relu': lambda: nn.ReLU(),
    'silu': lambda: nn.SiLU(),
    'swish': lambda: nn.SiLU(),
}


@dataclass
class InternVisionConfig:
    """The fields of a release ``config.json``'s ``vision_config`` that change the network.

    Defaults are InternViT-300M-448px as in the ``vision_config`` of InternVL2.5-1B/4B and InternVL3-2B/8B
    (the bases of Sa2VA-1B/4B and Sa2VA-InternVL3-2B/8B): hidden 1024, 16 heads, MLP 4096, 24 layers, 448 px,
    patch 14, LayerNorm eps 1e-6, no qk-norm, qkv bias, ``initializer_factor`` 1.0, GELU. InternViT-6B
    (Sa2VA-26B) is hidden 3200, 25 heads, 45 layers, ``rms_norm``, ``qk_normalization`` True.
    """

    hidden_size: int = 1024
    num_attention_heads: int = 16
    intermediate_size: int = 4096
    num_hidden_layers: int = 24
    image_size: int = 448
    patch_size: int = 14
    num_channels: int = 3
    layer_norm_eps: float = 1e-6
    norm_type: str = 'layer_norm'
    qk_normalization: bool = False
    qkv_bias: bool = True
    initializer_factor: float = 1.0
    initializer_range: float = 0.02
    drop_path_rate: float = 0.0
    dropout: float = 0.0
    attention_dropout: float = 0.0
    hidden_act: str = 'gelu'

    def __post_init__(self) -> None:
        self._validate()

    # ------------------------------------------------------------------ reading a release config
    @classmethod
    def from_dict(cls, config: Mapping[str, Any], source: str = 'vision_config') -> InternVisionConfig:
        """Build from a ``vision_config`` dict, or from a whole release ``config.json`` dict (its
        ``vision_config`` is taken). Keys that do not change the network (``use_flash_attn``, ``architectures``,
        ``torch_dtype``, transformers' generic ``PretrainedConfig`` fields, ...) are ignored and listed in a
        debug log; ``source`` names the file / field in messages."""
        if not isinstance(config, Mapping):
            raise TypeError(f'{source}: expected a dict, got {type(config).__name__}')
        if 'vision_config' in config:
            source = f'{source}["vision_config"]'
            config = config['vision_config']
            if not isinstance(config, Mapping):
                raise TypeError(f'{source}: expected a dict, got {type(config).__name__}')
        if config.get('use_moe'):
            raise ValueError(f'{source}: use_moe=True (a mixture-of-experts InternViT) is not supported; '
                             'only the dense InternViT of InternVL2.5 / InternVL3 is implemented')
        names = {f.name for f in fields(cls)}
        kwargs: dict[str, Any] = {}
        for name in names & set(config):
            kwargs[name] = _coerce(name, config[name], source)
        ignored = sorted(set(config) - names)
        if ignored:
            logger.debug('%s: ignored %d key(s) that do not change the network: %s', source, len(ignored), ignored)
        try:
            return cls(**kwargs)
        except ValueError as err:
            raise ValueError(f'{source}: {err}') from None

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @property
    def grid_size(self) -> int:
        """Patches per side of the stored position embedding (448 / 14 = 32)."""
        return self.image_size // self.patch_size

    def _validate(self) -> None:
        if self.norm_type not in NORM_TYPES:
            raise ValueError(f'norm_type must be one of {NORM_TYPES}, got {self.norm_type!r}')
        if self.hidden_act not in _ACTIVATIONS:
            raise ValueError(f'hidden_act must be one of {sorted(_ACTIVATIONS)}, got {self.hidden_act!r}')
        for name in ('hidden_size', 'num_attention_heads', 'intermediate_size', 'num_hidden_layers', 'image_size',
                     'patch_size', 'num_channels'):
            if getattr(self, name) <= 0:
                raise ValueError(f'{name} must be > 0, got {getattr(self, name)}')
        if self.hidden_size % self.num_attention_heads:
            raise ValueError(f'hidden_size {self.hidden_size} is not divisible by num_attention_heads '
                             f'{self.num_attention_heads}')
        if self.image_size % self.patch_size:
            raise ValueError(f'image_size {self.image_size} is not a multiple of patch_size {self.patch_size}')
        for name in ('drop_path_rate', 'dropout', 'attention_dropout'):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f'{name} must be in [0, 1), got {getattr(self, name)}')


def _coerce(name: str, value: Any, source: str) -> Any:
    """Type-check one config value; ``image_size`` / ``patch_size`` may be a square ``[n, n]`` pair."""
    if name in ('image_size', 'patch_size') and isinstance(value, (list, tuple)):
        if len(value) != 2 or value[0] != value[1]:
            raise ValueError(f'{source}.{name}: expected an int or a square [n, n] pair, got {value!r}')
        value = value[0]
    kind = {f.name: f.type for f in fields(InternVisionConfig)}[name]
    if kind == 'bool':
        if not isinstance(value, bool):
            raise TypeError(f'{source}.{name}: expected true/false, got {value!r}')
    elif kind == 'int':
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f'{source}.{name}: expected an integer, got {value!r}')
    elif kind == 'float':
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError(f'{source}.{name}: expected a number, got {value!r}')
        value = float(value)
    elif kind == 'str' and not isinstance(value, str):
        raise TypeError(f'{source}.{name}: expected a string, got {value!r}')
    return value


# ---------------------------------------------------------------------------------------------- layers
class RMSNorm(nn.Module):
    """``w · x / sqrt(mean(x²) + eps)``, computed in float32 and cast back (InternViT's ``InternRMSNorm``)."""

    def __init__(self, hidden_size: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(hidden_size))
        self.variance_epsilon = eps

    def forward(self, x: Tensor) -> Tensor:
        dtype = x.dtype
        x = x.float()
        x = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.variance_epsilon)
        return self.weight * x.to(dtype)


def _norm(config: InternVisionConfig, dim: int) -> nn.Module:
    if config.norm_type == 'rms_norm':
        return RMSNorm(dim, eps=config.layer_norm_eps)
    return nn.LayerNorm(dim, eps=config.layer_norm_eps)


class DropPath(nn.Module):
    """Stochastic depth: drop a residual branch per sample with probability ``p`` and rescale the kept ones by
    1 / (1 - p) (timm's ``DropPath`` with its default ``scale_by_keep=True``, which InternViT uses)."""

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = float(p)

    def forward(self, x: Tensor) -> Tensor:
        if self.p == 0.0 or not self.training:
            return x
        keep = 1.0 - self.p
        mask = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(keep)
        return x * mask.div_(keep)

    def extra_repr(self) -> str:
        return f'p={self.p}'


class InternVisionEmbeddings(nn.Module):
    """CLS token + patch embedding + position embedding (resized bicubically to the input's patch grid)."""

    def __init__(self, config: InternVisionConfig) -> None:
        super().__init__()
        self.embed_dim = config.hidden_size
        self.patch_size = config.patch_size
        self.grid_size = config.grid_size
        self.num_channels = config.num_channels
        self.class_embedding = nn.Parameter(torch.randn(1, 1, self.embed_dim))
        self.patch_embedding = nn.Conv2d(config.num_channels, self.embed_dim, kernel_size=self.patch_size,
                                         stride=self.patch_size)
        self.position_embedding = nn.Parameter(torch.randn(1, self.grid_size ** 2 + 1, self.embed_dim))

    def patch_position_embedding(self, height: int, width: int) -> Tensor:
        """(1, height·width, C): the stored patch positions, bicubically resized when the grid differs."""
        pos = self.position_embedding[:, 1:, :]
        if (height, width) == (self.grid_size, self.grid_size):
            return pos  # bicubic resampling onto the same grid is the identity
        dtype = pos.dtype
        pos = pos.float().reshape(1, self.grid_size, self.grid_size, -1).permute(0, 3, 1, 2)
        pos = F.interpolate(pos, size=(height, width), mode='bicubic', align_corners=False)
        return pos.reshape(1, -1, height * width).permute(0, 2, 1).to(dtype)

    def forward(self, pixel_values: Tensor) -> Tensor:
        dtype = self.patch_embedding.weight.dtype
        patches = self.patch_embedding(pixel_values.to(dtype))  # (B, C, h, w)
        batch, _, height, width = patches.shape
        patches = patches.flatten(2).transpose(1, 2)
        cls = self.class_embedding.expand(batch, 1, -1).to(dtype)
        pos = torch.cat([self.position_embedding[:, :1, :], self.patch_position_embedding(height, width)], dim=1)
        return torch.cat([cls, patches], dim=1) + pos.to(dtype)


class InternAttention(nn.Module):
    """Multi-head self-attention with a fused ``qkv`` projection and optional q/k RMSNorm."""

    def __init__(self, config: InternVisionConfig) -> None:
        super().__init__()
        self.embed_dim = config.hidden_size
        self.num_heads = config.num_attention_heads
        self.head_dim = self.embed_dim // self.num_heads
        self.scale = self.head_dim ** -0.5
        self.attention_dropout = config.attention_dropout
        self.qkv = nn.Linear(self.embed_dim, 3 * self.embed_dim, bias=config.qkv_bias)
        self.qk_normalization = config.qk_normalization
        if self.qk_normalization:
            self.q_norm = RMSNorm(self.embed_dim, eps=config.layer_norm_eps)
            self.k_norm = RMSNorm(self.embed_dim, eps=config.layer_norm_eps)
        self.proj = nn.Linear(self.embed_dim, self.embed_dim)
        self.proj_drop = nn.Dropout(config.dropout)

    def forward(self, x: Tensor) -> Tensor:
        batch, length, channels = x.shape
        q, k, v = self.qkv(x).reshape(batch, length, 3, channels).unbind(2)  # each (B, N, C)
        if self.qk_normalization:  # over the full width, before the split into heads
            q, k = self.q_norm(q), self.k_norm(k)
        q, k, v = (t.reshape(batch, length, self.num_heads, self.head_dim).transpose(1, 2) for t in (q, k, v))
        out = F.scaled_dot_product_attention(q, k, v, dropout_p=self.attention_dropout if self.training else 0.0,
                                             scale=self.scale)
        out = out.transpose(1, 2).reshape(batch, length, channels)
        return self.proj_drop(self.proj(out))


class InternMLP(nn.Module):
    def __init__(self, config: InternVisionConfig) -> None:
        super().__init__()
        self.fc1 = nn.Linear(config.hidden_size, config.intermediate_size)
        self.act = _ACTIVATIONS[config.hidden_act]()
        self.fc2 = nn.Linear(config.intermediate_size, config.hidden_size)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(self.act(self.fc1(x)))


class InternVisionEncoderLayer(nn.Module):
    """Pre-norm block with layer scales: ``x + dp(attn(norm1 x) · ls1)``, then ``x + dp(mlp(norm2 x) · ls2)``."""

    def __init__(self, config: InternVisionConfig, drop_path_rate: float) -> None:
        super().__init__()
        dim = config.hidden_size
        self.attn = InternAttention(config)
        self.mlp = InternMLP(config)
        self.norm1 = _norm(config, dim)
        self.norm2 = _norm(config, dim)
        self.ls1 = nn.Parameter(config.initializer_factor * torch.ones(dim))
        self.ls2 = nn.Parameter(config.initializer_factor * torch.ones(dim))
        self.drop_path1 = DropPath(drop_path_rate) if drop_path_rate > 0 else nn.Identity()
        self.drop_path2 = DropPath(drop_path_rate) if drop_path_rate > 0 else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.drop_path1(self.attn(self.norm1(x)) * self.ls1)
        return x + self.drop_path2(self.mlp(self.norm2(x)) * self.ls2)


class InternVisionEncoder(nn.Module):
    def __init__(self, config: InternVisionConfig) -> None:
        super().__init__()
        n = config.num_hidden_layers
        rates = [r.item() for r in torch.linspace(0, config.drop_path_rate, n)]  # stochastic depth decay rule
        self.layers = nn.ModuleList([InternVisionEncoderLayer(config, rates[i]) for i in range(n)])
        #: Recompute each layer in backward (saves activation memory when the encoder is trained).
        self.gradient_checkpointing = False

    def forward(self, x: Tensor, output_hidden_states: bool = False) -> tuple[Tensor, tuple[Tensor, ...] | None]:
        states: list[Tensor] | None = [x] if output_hidden_states else None
        for layer in self.layers:
            if self.gradient_checkpointing and self.training and torch.is_grad_enabled():
                x = torch.utils.checkpoint.checkpoint(layer, x, use_reentrant=False)
            else:
                x = layer(x)
            if states is not None:
                states.append(x)
        return x, tuple(states) if states is not None else None


class InternVisionOutput(NamedTuple):
    """``last_hidden_state`` (B, 1 + h·w, C), CLS first; ``hidden_states``: embeddings + one per layer, or None."""

    last_hidden_state: Tensor
    hidden_states: tuple[Tensor, ...] | None = None


@MODELS.register_module()
class InternVisionModel(nn.Module):
    """InternViT with the parameter names of the released ``vision_model.*`` weights.

    Args:
        config: an :class:`InternVisionConfig`, or a dict (a ``vision_config`` or a whole release
            ``config.json``; see :meth:`InternVisionConfig.from_dict`).
    """

    def __init__(self, config: InternVisionConfig | Mapping[str, Any]) -> None:
        super().__init__()
        if not isinstance(config, InternVisionConfig):
            config = InternVisionConfig.from_dict(config)
        self.config = config
        self.embeddings = InternVisionEmbeddings(config)
        self.encoder = InternVisionEncoder(config)

    def set_gradient_checkpointing(self, enabled: bool = True) -> None:
        self.encoder.gradient_checkpointing = bool(enabled)

    def forward(self, pixel_values: Tensor, output_hidden_states: bool = False) -> InternVisionOutput:
        """``pixel_values`` (B, 3, H, W), H and W multiples of the patch size (other sizes than
        ``image_size`` get resized position embeddings)."""
        if pixel_values.ndim != 4 or pixel_values.shape[1] != self.config.num_channels:
            raise ValueError(f'pixel_values must be (B, {self.config.num_channels}, H, W), '
                             f'got shape {tuple(pixel_values.shape)}')
        height, width = pixel_values.shape[-2:]
        p = self.config.patch_size
        if height % p or width % p:
            raise ValueError(f'pixel_values of size {height}x{width} are not a multiple of the patch size {p}')
        last, states = self.encoder(self.embeddings(pixel_values), output_hidden_states=output_hidden_states)
        return InternVisionOutput(last, states)
