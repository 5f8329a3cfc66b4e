"""Run options of the SEEM fine-tuning recipe as config keys (the researcher's SEEM overrides, issue 11):

* ``train_batch_size_total`` / ``train_batch_size_per_gpu`` (SEEM ``TRAIN.BATCH_SIZE_TOTAL`` /
  ``BATCH_SIZE_PER_GPU``; SEEM reads only the total): the configs put the per-GPU size into
  ``train_dataloader.batch_size`` and :class:`TrainBatchSizeCheckHook` refuses a run whose total is not
  ``per_gpu × world size × gradient accumulation`` (``optim_wrapper.accumulative_counts``), naming every number.
  Nothing in it is SEEM-specific: any config may add the keys and the hook.
* ``evaluate_at_start`` (SEEM ``EVAL_AT_START``): :class:`EvaluateAtStartHook` runs the validation loop once before
  the first training iteration (mmengine 0.10.7's train loops only validate after ``val_begin`` iterations/epochs).
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mmengine.hooks import Hook
from mmengine.logging import print_log

from ovseg.registry import HOOKS

__all__ = ['check_train_batch_size', 'TrainBatchSizeCheckHook', 'EvaluateAtStartHook']


class BatchSizeError(ValueError):
    """The declared total training batch does not match per-GPU batch × processes × accumulation."""


def check_train_batch_size(total: int | None, per_gpu: int | None, world_size: int, accumulation: int = 1,
                           loader_batch_size: int | None = None) -> int:
    """Check the batch-size keys; returns the effective total batch (``per_gpu × world_size × accumulation``).

    ``None`` keys are not checked. Raises :class:`BatchSizeError` naming all numbers when ``total`` differs from the
    effective batch, or the dataloader's ``batch_size`` from ``per_gpu`` (one of them overridden alone).
    """
    world_size, accumulation = int(world_size), int(accumulation)
    if per_gpu is None:
        per_gpu = loader_batch_size
    elif loader_batch_size is not None and int(loader_batch_size) != int(per_gpu):
        raise BatchSizeError(f'train_batch_size_per_gpu={per_gpu} but train_dataloader.batch_size='
                             f'{loader_batch_size}: set both (the configs set the second from the first)')
    if per_gpu is None:
        raise BatchSizeError('no per-GPU batch size: set train_batch_size_per_gpu or train_dataloader.batch_size')
    effective = int(per_gpu) * world_size * accumulation
    if total is not None and int(total) != effective:
        hint = ''
        if int(total) % (int(per_gpu) * world_size) == 0:
            hint = f'; e.g. optim_wrapper.accumulative_counts={int(total) // (int(per_gpu) * world_size)}'
        elif int(total) % (world_size * accumulation) == 0:
            hint = f'; e.g. train_batch_size_per_gpu={int(total) // (world_size * accumulation)}'
        raise BatchSizeError(
            f'train_batch_size_total={total} but train_batch_size_per_gpu={per_gpu} x world_size={world_size} x '
            f'accumulative_counts={accumulation} = {effective}: change the GPU count, the per-GPU batch or the '
            f'gradient accumulation so that they multiply to the total{hint}')
    return effective


def _accumulation(runner: Any) -> int:
    wrapper = getattr(runner, 'optim_wrapper', None)
    counts = getattr(wrapper, '_accumulative_counts', None)
    if counts is None:
        cfg = runner.cfg.get('optim_wrapper', {}) or {}
        counts = cfg.get('accumulative_counts', 1) if isinstance(cfg, Mapping) else 1
    return int(counts)


@HOOKS.register_module()
class TrainBatchSizeCheckHook(Hook):
    """Refuse a training run whose ``train_batch_size_total`` is not per-GPU batch × world size × accumulation.

    Args:
        total / per_gpu: the batch sizes; default: the config's ``train_batch_size_total`` /
            ``train_batch_size_per_gpu`` keys (either may be absent).
    """

    priority = 'VERY_HIGH'

    def __init__(self, total: int | None = None, per_gpu: int | None = None) -> None:
        self.total, self.per_gpu = total, per_gpu

    def before_train(self, runner: Any) -> None:
        total = self.total if self.total is not None else runner.cfg.get('train_batch_size_total')
        per_gpu = self.per_gpu if self.per_gpu is not None else runner.cfg.get('train_batch_size_per_gpu')
        loader = runner.train_dataloader
        loader_bs = loader.batch_size if loader.batch_size is not None else \
            getattr(loader.batch_sampler, 'batch_size', None)
        effective = check_train_batch_size(total, per_gpu, runner.world_size, _accumulation(runner), loader_bs)
        print_log(f'training batch: {effective} = {loader_bs} per process x {runner.world_size} processes x '
                  f'{_accumulation(runner)} accumulation steps', logger='current')


@HOOKS.register_module()
class EvaluateAtStartHook(Hook):
    """Run the validation loop once before training (SEEM ``EVAL_AT_START``).

    Args:
        enabled: default: the config's ``evaluate_at_start`` key (False when absent).
    """

    priority = 'LOW'  # after the hooks that prepare the model for evaluation (e.g. VocabularyHook)

    def __init__(self, enabled: bool | None = None) -> None:
        self.enabled = enabled

    def before_train(self, runner: Any) -> None:
        enabled = self.enabled if self.enabled is not None else bool(runner.cfg.get('evaluate_at_start', False))
        if not enabled:
            return
        if runner.val_loop is None:
            raise ValueError('evaluate_at_start=True needs a validation loop (val_dataloader, val_cfg, '
                             'val_evaluator)')
        print_log(f'evaluate_at_start: validating before iteration {runner.iter}', logger='current')
        runner.val_loop.run()
