"""Apply the ``peft`` and ``trainable_params`` config keys to a built model (the runner and plain scripts)."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from mmengine.logging import print_log
from torch import nn

from ovseg.registry import PEFT_WRAPPERS

from .trainable import apply_trainable_params, check_trainable_params_cfg, format_parameter_table


def apply_peft(model: nn.Module, peft: Sequence[Mapping | Any] | Mapping | None) -> dict[str, list[str]]:
    """Build each wrapper of ``peft`` (configs in ``PEFT_WRAPPERS``, e.g. ``type='LoRA'``) and apply it in
    order; returns ``{'<index>:<type>': adapted module names}``."""
    if peft is None:
        return {}
    cfgs = [peft] if isinstance(peft, Mapping) else list(peft)
    applied = {}
    for i, cfg in enumerate(cfgs):
        wrapper = PEFT_WRAPPERS.build(dict(cfg)) if isinstance(cfg, Mapping) else cfg
        if not hasattr(wrapper, 'apply'):
            raise TypeError(f'peft[{i}]: {type(wrapper).__name__} has no apply(model)')
        applied[f'{i}:{type(wrapper).__name__}'] = wrapper.apply(model)
    return applied


def configure_trainable(model: nn.Module, peft: Sequence[Mapping] | Mapping | None = None,
                        trainable_params: Mapping | None = None, logger: str | Any = 'current',
                        log_table: bool = True) -> set[str]:
    """``peft`` wrappers first, then ``trainable_params``; logs what was adapted and the trainable table.

    The plain function behind ``OVSegRunner.build_model`` for code that builds its model itself. Call it
    before wrapping the model in DDP / FSDP: they fix the set of trained parameters when they wrap.
    Returns the names of the parameters that train.
    """
    applied = apply_peft(model, peft)
    for key, names in applied.items():
        print_log(f'peft {key}: {len(names)} modules adapted '
                  f'({", ".join(names[:4])}{", ..." if len(names) > 4 else ""})', logger=logger)
    trainable = apply_trainable_params(model, **check_trainable_params_cfg(trainable_params))
    if log_table:
        print_log('\n' + format_parameter_table(model), logger=logger)
    return trainable
