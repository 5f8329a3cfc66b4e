"""Bottleneck adapters attached to a module's output without renaming any of its parameters.

An adapter is ``in → in/r → out`` with an activation (Houlsby et al. 2019; AdaptFormer, Chen et al. 2022)
and a zero-initialised up-projection, so the adapted model equals the base model at initialisation. It lives
in a ``nn.ModuleDict`` named ``adapters`` on the adapted module (parameter names contain ``.adapters.``; the
pixel decoder's official ``adapter_1..3`` lateral convs never collide) and is applied by a forward hook:
the base module's own keys in the state dict are unchanged, so base checkpoints load as before.

- ``mode='serial'``: ``y = f(x) + s · A(f(x))`` (the adapter refines the output; ``in == out``).
- ``mode='parallel'``: ``y = f(x) + s · A(x)`` (the adapter runs beside the module on its input).
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from ovseg.registry import PEFT_WRAPPERS

from .matching import (
    get_submodule,
    match_module_names,
    restore_wrapper_params,
    snapshot_wrapper_params,
    wrapper_internal_names,
)

ACTIVATIONS = dict(ReLU=nn.ReLU, GELU=nn.GELU, SiLU=nn.SiLU, Tanh=nn.Tanh, Identity=nn.Identity)
_OUT_DIM_ATTRS = ('out_features', 'out_channels', 'embed_dim', 'num_features', 'num_channels', 'd_model',
                  'hidden_size', 'hidden_dim')
_IN_DIM_ATTRS = ('in_features', 'in_channels', 'embed_dim', 'num_features', 'num_channels', 'd_model',
                 'hidden_size', 'hidden_dim')


class BottleneckAdapter(nn.Module):
    """``x ↦ scale · up(dropout(act(down(x))))`` over the channel dimension; ``up`` starts at zero."""

    def __init__(self, in_dim: int, out_dim: int | None = None, hidden_dim: int | None = None,
                 reduction: int = 2, act: str = 'ReLU', dropout: float = 0.0, scale: float = 1.0,
                 channel_dim: int = -1) -> None:
        super().__init__()
        out_dim = in_dim if out_dim is None else out_dim
        hidden_dim = hidden_dim or max(in_dim // int(reduction), 1)
        if act not in ACTIVATIONS:
            raise ValueError(f'adapter activation {act!r} is not one of {sorted(ACTIVATIONS)}')
        self.down = nn.Linear(in_dim, hidden_dim)
        self.act = ACTIVATIONS[act]()
        # no Dropout module at p=0: even then it draws random numbers, shifting the RNG stream of the base model
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.up = nn.Linear(hidden_dim, out_dim)
        nn.init.zeros_(self.up.weight)
        nn.init.zeros_(self.up.bias)
        self.scale, self.channel_dim = float(scale), int(channel_dim)

    def forward(self, x: Tensor) -> Tensor:
        if self.channel_dim != -1:
            x = x.movedim(self.channel_dim, -1)
        y = self.up(self.dropout(self.act(self.down(x))))
        if self.scale != 1.0:
            y = y * self.scale
        return y.movedim(-1, self.channel_dim) if self.channel_dim != -1 else y


class AttachedAdapter(BottleneckAdapter):
    """A ``BottleneckAdapter`` plus where it reads from and writes to in its host module's call."""

    def __init__(self, *args: Any, mode: str = 'serial', output_index: int | str | None = None,
                 input_key: str | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if mode not in ('serial', 'parallel'):
            raise ValueError(f"adapter mode must be 'serial' or 'parallel', got {mode!r}")
        self.mode, self.output_index, self.input_key = mode, output_index, input_key


def _select(output: Any, index: int | str | None, host: nn.Module) -> Tensor:
    if index is None:
        if not isinstance(output, Tensor):
            raise TypeError(f'{type(host).__name__} returns {type(output).__name__}, not a tensor: give the '
                            'adapter an output_index (position or key of the tensor to adapt)')
        return output
    return output[index]


def _replace_output(output: Any, index: int | str | None, value: Tensor) -> Any:
    if index is None:
        return value
    if isinstance(output, dict):
        return {**output, index: value}
    items = list(output)
    items[index] = value
    if hasattr(output, '_fields'):  # namedtuple
        return type(output)(*items)
    return tuple(items) if isinstance(output, tuple) else items


def _input_of(adapter: AttachedAdapter, host: nn.Module, args: tuple, kwargs: dict) -> Tensor:
    if adapter.input_key is not None:
        if adapter.input_key not in kwargs:
            raise KeyError(f'{type(host).__name__} was called without keyword {adapter.input_key!r} '
                           'that its parallel adapter reads')
        return kwargs[adapter.input_key]
    if not args:
        raise TypeError(f'{type(host).__name__} was called without positional input: give its parallel '
                        'adapter an input_key')
    return args[0]


def apply_adapters_hook(module: nn.Module, args: tuple, kwargs: dict, output: Any) -> Any:
    """Forward hook: add every adapter of ``module.adapters`` to the output (module-level, so a deep copy of
    the model runs its own copied adapters)."""
    for adapter in module.adapters.values():
        base = _select(output, adapter.output_index, module)
        src = base if adapter.mode == 'serial' else _input_of(adapter, module, args, kwargs)
        output = _replace_output(output, adapter.output_index, base + adapter(src))
    return output


def _infer_dim(module: nn.Module, attrs: Sequence[str], what: str, name: str) -> int:
    for attr in attrs:
        value = getattr(module, attr, None)
        if isinstance(value, int):
            return value
    shape = getattr(module, 'normalized_shape', None)
    if shape:
        return int(shape[-1])
    raise ValueError(f"adapter on '{name}' ({type(module).__name__}): cannot infer its {what} dimension; "
                     f"give {'dim' if what == 'output' else 'in_dim'}=<channels>")


@PEFT_WRAPPERS.register_module(name='BottleneckAdapters')
class BottleneckAdapters:
    """Attach one bottleneck adapter to each module of ``module`` selected by ``targets``.

    Args:
        targets: regex (whole module name) or list of names / dotted suffixes, relative to ``module``.
        reduction / hidden_dim: bottleneck width ``dim // reduction`` unless ``hidden_dim`` is given.
            Default 2: d → d/2 → d, the decoder adapters of the public SEEM fine-tuning fork (seem_v1.py).
        dim: output channels (inferred from ``out_features``, ``out_channels``, ``embed_dim``, ... when None).
        in_dim: input channels of a parallel adapter (inferred likewise).
        mode: 'serial' or 'parallel' (see the module docstring).
        act, dropout: activation (ReLU as that fork) and dropout inside the bottleneck.
        scale: fixed factor on the adapter's output.
        channel_dim: channel axis of the adapted tensor (None: 1 for convolutions, else -1).
        output_index: position / key of the tensor to adapt when the module returns a tuple or dict.
        input_key: keyword argument a parallel adapter reads when the module is called by keyword.
        module: scope ('' = the whole model). name: key in each ``adapters`` container.
        freeze_base: freeze the scope's own parameters (adapters added by earlier wrappers keep their state),
            as peft does for LoRA; ``trainable_params`` can unfreeze more afterwards.
    """

    def __init__(self, targets: str | Sequence[str], reduction: int = 2, hidden_dim: int | None = None,
                 dim: int | None = None, in_dim: int | None = None, mode: str = 'serial', act: str = 'ReLU',
                 dropout: float = 0.0, scale: float = 1.0, channel_dim: int | None = None,
                 output_index: int | str | None = None, input_key: str | None = None, module: str = '',
                 name: str = 'default', freeze_base: bool = True) -> None:
        if mode not in ('serial', 'parallel'):
            raise ValueError(f"adapter mode must be 'serial' or 'parallel', got {mode!r}")
        if int(reduction) < 1:
            raise ValueError(f'adapter reduction must be >= 1, got {reduction}')
        self.targets, self.reduction, self.hidden_dim = targets, int(reduction), hidden_dim
        self.dim, self.in_dim, self.mode, self.act, self.dropout = dim, in_dim, mode, act, dropout
        self.scale, self.channel_dim, self.output_index, self.input_key = scale, channel_dim, output_index, input_key
        self.module, self.name, self.freeze_base = module, name, freeze_base

    def apply(self, model: nn.Module) -> list[str]:
        """Attach in place; returns the adapted module names (relative to the model)."""
        scope = get_submodule(model, self.module)
        names = match_module_names(scope, self.targets, 'adapter targets', exclude=wrapper_internal_names(scope))
        if self.freeze_base:
            before = snapshot_wrapper_params(model)
            for p in scope.parameters():
                p.requires_grad_(False)
            restore_wrapper_params(model, before)
        for name in names:
            self._attach(scope.get_submodule(name), name)
        prefix = f'{self.module}.' if self.module else ''
        return [prefix + n for n in names]

    def _attach(self, host: nn.Module, name: str) -> None:
        if isinstance(host, (nn.Sequential, nn.ModuleList, nn.ModuleDict)):
            raise TypeError(f"adapter target '{name}' is a {type(host).__name__}: its children are its layers, "
                            'so it cannot hold an adapters container; target its last layer or its parent')
        container = getattr(host, 'adapters', None)
        if container is None:
            container = nn.ModuleDict()
            host.add_module('adapters', container)
            host.register_forward_hook(apply_adapters_hook, with_kwargs=True)
        elif not isinstance(container, nn.ModuleDict):
            raise TypeError(f"'{name}' already has an attribute 'adapters' ({type(container).__name__})")
        if self.name in container:
            raise ValueError(f"'{name}' already has an adapter named {self.name!r}")
        conv = isinstance(host, nn.modules.conv._ConvNd)
        out_dim = self.dim or _infer_dim(host, _OUT_DIM_ATTRS, 'output', name)
        in_dim = out_dim if self.mode == 'serial' else self.in_dim or _infer_dim(host, _IN_DIM_ATTRS, 'input', name)
        adapter = AttachedAdapter(in_dim, out_dim, hidden_dim=self.hidden_dim, reduction=self.reduction,
                                  act=self.act, dropout=self.dropout, scale=self.scale,
                                  channel_dim=(1 if conv else -1) if self.channel_dim is None else self.channel_dim,
                                  mode=self.mode, output_index=self.output_index, input_key=self.input_key)
        ref = next(host.parameters(), None)
        if ref is not None:
            adapter.to(device=ref.device, dtype=ref.dtype if ref.is_floating_point() else torch.float32)
        container[self.name] = adapter
