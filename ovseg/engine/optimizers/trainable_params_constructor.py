"""An optimizer constructor that holds exactly the parameters that train.

mmengine's ``DefaultOptimWrapperConstructor`` passes ``model.parameters()`` — frozen ones included — when no
``paramwise_cfg`` is given, and with one it logs a warning for every frozen tensor it skips (thousands for a
frozen LLM). This constructor keeps mmengine's ``paramwise_cfg`` semantics and leaves every parameter with
``requires_grad=False`` out in both cases, logging one summary line instead. ``OVSegRunner`` makes it the
default; ``build_trainable_optim_wrapper`` serves code that builds its optimizer itself.
"""
from __future__ import annotations

import inspect
import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from mmengine.logging import MMLogger, print_log
from mmengine.optim import DefaultOptimWrapperConstructor, OptimWrapper
from torch import nn

from ovseg.registry import OPTIM_WRAPPER_CONSTRUCTORS, OPTIM_WRAPPERS, OPTIMIZERS

_SKIP_MESSAGE = 'is skipped since its requires_grad=False'


class _DropFrozenSkips(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return _SKIP_MESSAGE not in record.getMessage()


@contextmanager
def _quiet_frozen_skips() -> Iterator[None]:
    logger = MMLogger.get_current_instance()
    filt = _DropFrozenSkips()
    logger.addFilter(filt)
    try:
        yield
    finally:
        logger.removeFilter(filt)


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class TrainableParamsOptimWrapperConstructor(DefaultOptimWrapperConstructor):
    """``DefaultOptimWrapperConstructor`` whose optimizer holds only ``requires_grad`` parameters."""

    def __call__(self, model: nn.Module) -> OptimWrapper:
        if hasattr(model, 'module'):
            model = model.module
        optim_wrapper_cfg = self.optim_wrapper_cfg.copy()
        optim_wrapper_cfg.setdefault('type', 'OptimWrapper')
        optimizer_cfg = self.optimizer_cfg.copy()
        optimizer_cls = self.optimizer_cfg['type']
        if isinstance(optimizer_cls, str):
            with OPTIMIZERS.switch_scope_and_registry(None) as registry:
                optimizer_cls = registry.get(self.optimizer_cfg['type'])
        # Some optimizers name their first argument ``model_params`` (as mmengine handles it).
        first_arg = next(iter(inspect.signature(optimizer_cls).parameters))
        trainable = [p for p in model.parameters() if p.requires_grad]
        frozen = sum(1 for p in model.parameters() if not p.requires_grad)
        if not trainable:
            raise ValueError(f'{type(model).__name__} has no parameter that requires grad: nothing to optimise '
                             '(check the trainable_params / peft config keys)')
        if not self.paramwise_cfg:
            optimizer_cfg[first_arg] = trainable
        else:
            params: list = []
            with _quiet_frozen_skips():
                self.add_params(params, model)
            optimizer_cfg[first_arg] = params
        optimizer = OPTIMIZERS.build(optimizer_cfg)
        print_log(f'optimizer holds {len(trainable)} trainable parameter tensors '
                  f'({sum(p.numel() for p in trainable):,} elements); {frozen} frozen tensors left out',
                  logger='current')
        return OPTIM_WRAPPERS.build(optim_wrapper_cfg, default_args=dict(optimizer=optimizer))


def build_trainable_optim_wrapper(model: nn.Module, cfg: Mapping) -> OptimWrapper:
    """An ``optim_wrapper`` config (with optional ``paramwise_cfg``) built over the trainable parameters."""
    cfg = dict(cfg)
    cfg.pop('constructor', None)
    paramwise_cfg = cfg.pop('paramwise_cfg', None)
    return TrainableParamsOptimWrapperConstructor(cfg, paramwise_cfg)(model)


def frozen_params_in_optimizer(optim_wrapper: OptimWrapper) -> int:
    """How many tensors with ``requires_grad=False`` an optimizer holds (a foreign constructor may add them)."""
    wrappers = optim_wrapper.values() if hasattr(optim_wrapper, 'values') else [optim_wrapper]
    return sum(1 for w in wrappers for g in w.optimizer.param_groups for p in g['params'] if not p.requires_grad)
