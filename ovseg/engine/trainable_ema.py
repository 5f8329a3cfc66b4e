"""Exponential moving average of the trainable parameters only, usable as a teacher.

mmengine's ``ExponentialMovingAverage`` deep-copies the whole model, which doubles the memory of a 4B model
whose LLM is frozen; frozen weights never change, so their average is themselves. ``TrainableEMA`` keeps
shadows of the ``requires_grad`` parameters (plus float buffers the caller names) and reads everything else
from the live model.

Update rule (mmengine's ``ExponentialMovingAverage`` / ``BaseAveragedModel.update_parameters``): the first
update copies the parameters; afterwards, on every ``interval``-th update, ``shadow ← shadow + momentum ·
(param − shadow)`` (``lerp_``), i.e. ``decay = 1 − momentum`` (Sa2VA's decay 0.999 is momentum 0.001).
"""
from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import torch
from torch import Tensor, nn

from ovseg.models.peft.matching import match_param_names


def resolve_momentum(momentum: float | None, decay: float | None) -> float:
    """``momentum`` (mmengine's name) or ``decay = 1 − momentum``; exactly one, in (0, 1)."""
    if (momentum is None) == (decay is None):
        raise ValueError('give exactly one of momentum (mmengine: weight of the new value) and decay (1 - momentum)')
    value = 1.0 - float(decay) if momentum is None else float(momentum)
    if not 0.0 < value < 1.0:
        raise ValueError(f'EMA momentum must be in (0, 1), got {value} (decay {1.0 - value})')
    return value


class TrainableEMA:
    """Shadow copies of ``model``'s trainable parameters (and named float buffers), averaged over updates.

    Args:
        model: the (unwrapped) model; its ``requires_grad`` flags at construction define the tracked set.
        momentum / decay: see the module docstring (exactly one).
        interval: average on every ``interval``-th update (mmengine's meaning).
        buffers: regular expressions naming float buffers to average too (e.g. BatchNorm statistics).
        teacher_eval: run teacher passes in eval mode (dropout off), restoring each module's mode afterwards.
    """

    def __init__(self, model: nn.Module, momentum: float | None = None, decay: float | None = None,
                 interval: int = 1, buffers: str | Sequence[str] = (), teacher_eval: bool = True) -> None:
        self.model = model
        self.momentum = resolve_momentum(momentum, decay)
        if int(interval) < 1:
            raise ValueError(f'EMA interval must be >= 1, got {interval}')
        self.interval, self.teacher_eval, self.steps = int(interval), teacher_eval, 0
        sources = {n: p for n, p in model.named_parameters() if p.requires_grad}
        if buffers:
            named_buffers = dict(model.named_buffers())
            for name in sorted(match_param_names(named_buffers, buffers, 'EMA buffers')):
                if not named_buffers[name].is_floating_point():
                    raise ValueError(f'EMA buffers: {name} is {named_buffers[name].dtype}, not a float buffer')
                sources[name] = named_buffers[name]
        if not sources:
            raise ValueError(f'{type(model).__name__} has no trainable parameter to average')
        self.shadow: dict[str, Tensor] = {n: t.detach().clone() for n, t in sources.items()}

    def _sources(self) -> dict[str, Tensor]:
        named = dict(self.model.named_parameters())
        named.update(self.model.named_buffers())
        missing = [n for n in self.shadow if n not in named]
        if missing:
            raise KeyError(f'EMA: the model no longer has {missing[:5]} (was it re-wrapped after the EMA was made?)')
        return {n: named[n] for n in self.shadow}

    @property
    def num_elements(self) -> int:
        return sum(t.numel() for t in self.shadow.values())

    @torch.no_grad()
    def copy_from_model(self) -> None:
        """Shadow := current values (what mmengine's EMAHook does before ``begin_iter``)."""
        for name, src in self._sources().items():
            self.shadow[name].copy_(src.detach())

    @torch.no_grad()
    def update(self) -> None:
        """One EMA update (the first copies; then every ``interval``-th one averages)."""
        if self.steps == 0:
            self.copy_from_model()
        elif self.steps % self.interval == 0:
            for name, src in self._sources().items():
                self.shadow[name].lerp_(src.detach().to(self.shadow[name].device), self.momentum)
        self.steps += 1

    def state_dict(self) -> dict[str, Any]:
        """Plain tensors and numbers (loads under ``torch.load(weights_only=True)``), shadows on the CPU."""
        return dict(steps=self.steps, momentum=self.momentum, interval=self.interval,
                    shadow={n: t.detach().cpu() for n, t in self.shadow.items()})

    @torch.no_grad()
    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore a ``state_dict``; its tracked names and shapes must equal this EMA's."""
        shadow = state['shadow']
        missing, unexpected = sorted(set(self.shadow) - set(shadow)), sorted(set(shadow) - set(self.shadow))
        if missing or unexpected:
            raise KeyError(f'EMA state does not match the trainable set: missing {missing[:5]}, '
                           f'unexpected {unexpected[:5]} (did trainable_params / peft change?)')
        for name, value in shadow.items():
            if value.shape != self.shadow[name].shape:
                raise ValueError(f'EMA state: {name} has shape {tuple(value.shape)}, '
                                 f'expected {tuple(self.shadow[name].shape)}')
            self.shadow[name].copy_(value)
        self.steps = int(state['steps'])

    @torch.no_grad()
    def init_from_state_dict(self, state_dict: Mapping[str, Tensor]) -> int:
        """Shadow := the tensors of a model state dict (a checkpoint without EMA state); returns how many."""
        found = 0
        for name, shadow in self.shadow.items():
            if name in state_dict:
                shadow.copy_(state_dict[name])
                found += 1
        return found

    @contextmanager
    def _teacher_mode(self) -> Iterator[None]:
        modes = [(m, m.training) for m in self.model.modules()]
        if self.teacher_eval:
            self.model.eval()
        try:
            yield
        finally:
            for module, mode in modes:
                module.training = mode

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """``model(*args, **kwargs)`` with the shadow weights, under ``no_grad``, without touching the student.

        ``torch.func.functional_call`` substitutes the shadows for the trainable tensors during the call; no
        weight is copied. For mmengine models use ``mode=`` as usual (e.g. ``ema(inputs, samples,
        mode='predict')``).
        """
        with torch.no_grad(), self._teacher_mode():
            return torch.func.functional_call(self.model, self.shadow, args, kwargs, strict=False)

    @torch.no_grad()
    def swap(self) -> None:
        """Exchange the model's values and the shadows (calling it twice restores both exactly). Values move
        through ``.data``, so autograd version counters of the student's saved tensors are not bumped."""
        for name, src in self._sources().items():
            tmp = src.data.clone()
            src.data.copy_(self.shadow[name])
            self.shadow[name].copy_(tmp)

    @contextmanager
    def swapped(self) -> Iterator[nn.Module]:
        """The model with the shadows swapped in (any method may run: ``predict``, ``generate``...); the
        student's exact values come back on exit."""
        self.swap()
        try:
            with self._teacher_mode():
                yield self.model
        finally:
            self.swap()
