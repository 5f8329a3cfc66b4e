"""EMA of the trainable parameters only, kept in checkpoints, optionally swapped in for val/test.

Config::

    custom_hooks = [dict(type='TrainableEMAHook', decay=0.999)]   # Sa2VA's EMA teacher decay

The model reaches the average through ``model.ema_teacher`` (a ``TrainableEMA``): ``model.ema_teacher(inputs,
data_samples, mode='predict')`` runs the teacher pass with the shadow weights without copying the student's,
``with model.ema_teacher.swapped(): ...`` swaps them in for any other method.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from ovseg.models.peft import adapt_base_state_dict
from ovseg.registry import HOOKS

from ..fsdp import is_fsdp_model
from ..trainable_ema import TrainableEMA, resolve_momentum

CHECKPOINT_KEY = 'trainable_ema'


@HOOKS.register_module()
class TrainableEMAHook(Hook):
    """Keep a ``TrainableEMA`` of the trained parameters and carry it through checkpoints.

    Args:
        momentum / decay: EMA rate, exactly one (``decay = 1 − momentum``; mmengine's ``EMAHook`` default
            momentum is 0.0002, Sa2VA uses decay 0.999).
        interval: average on every ``interval``-th update (mmengine's meaning).
        begin_iter: before iteration ``begin_iter`` the shadow follows the model (copied every iteration); the
            first update at ``begin_iter`` copies, later ones average — as mmengine's ``EMAHook``.
        buffers: regexes naming float buffers to average as well.
        eval_with_shadow: swap the shadow in for validation and test epochs (mmengine's EMAHook always does;
            here off by default: the average is mainly a teacher, the student is what is being evaluated).
        model_attr: attribute through which the model reaches the ``TrainableEMA`` (None: do not attach).
        teacher_eval: teacher passes run in eval mode (dropout off).
        strict_load: a checkpoint's EMA state must match the trainable set exactly (else: error).

    The hook tracks the parameters that require grad when the run starts (after ``peft`` and
    ``trainable_params`` were applied). Not under FSDP (``OVSegFSDPStrategy``): there each rank holds only a
    shard of every parameter (with ``use_orig_params=True``, 1-D views of the local shard named
    ``..._fsdp_wrapped_module...``), so the shadows would be per-rank shards that a rank-0 checkpoint cannot hold
    and a teacher pass cannot use; gathering the full trainable set every iteration would unshard the frozen
    weights too. ``before_run`` raises ``NotImplementedError`` for an FSDP model; use DDP (``OVSegRunner``).
    """

    priority = 'NORMAL'

    def __init__(self, momentum: float | None = None, decay: float | None = None, interval: int = 1,
                 begin_iter: int = 0, buffers: str | Sequence[str] = (), eval_with_shadow: bool = False,
                 model_attr: str | None = 'ema_teacher', teacher_eval: bool = True, strict_load: bool = True) -> None:
        if begin_iter < 0:
            raise ValueError(f'begin_iter must be >= 0, got {begin_iter}')
        if momentum is None and decay is None:
            momentum = 0.0002  # mmengine ExponentialMovingAverage default
        self.ema_kwargs = dict(momentum=momentum, decay=decay, interval=interval, buffers=buffers,
                               teacher_eval=teacher_eval)
        resolve_momentum(momentum, decay)  # fail at config time, not when the run starts
        self.begin_iter, self.eval_with_shadow = begin_iter, eval_with_shadow
        self.model_attr, self.strict_load = model_attr, strict_load
        self.ema: TrainableEMA | None = None

    def before_run(self, runner: Any) -> None:
        """Build the EMA once per model: ``runner.test()`` after ``runner.train()`` keeps the trained one."""
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        if self.ema is not None and self.ema.model is model:
            return
        if is_fsdp_model(runner.model):
            raise NotImplementedError(
                'TrainableEMAHook does not support FSDP (OVSegFSDPStrategy): each rank holds only shards of the '
                'trainable parameters, so the EMA shadows, their checkpoint and the teacher pass would be wrong. '
                "Train with DDP (runner_type='OVSegRunner') to use the EMA teacher, or remove the hook.")
        self.ema = TrainableEMA(model, **self.ema_kwargs)
        if self.model_attr:
            setattr(model, self.model_attr, self.ema)
        runner.logger.info(f'TrainableEMAHook: {len(self.ema.shadow)} tensors, {self.ema.num_elements:,} shadow '
                           f'elements (momentum {self.ema.momentum:.6g}, interval {self.ema.interval}, '
                           f'begin_iter {self.begin_iter})')

    def before_train(self, runner: Any) -> None:
        if self.begin_iter > runner.max_iters:
            raise ValueError(f'begin_iter {self.begin_iter} is after the last iteration {runner.max_iters}')

    def after_train_iter(self, runner: Any, batch_idx: int, data_batch: Any = None, outputs: Any = None) -> None:
        if runner.iter + 1 >= self.begin_iter:
            self.ema.update()
        else:
            self.ema.copy_from_model()

    def before_val_epoch(self, runner: Any) -> None:
        if self.eval_with_shadow:
            self.ema.swap()

    def after_val_epoch(self, runner: Any, metrics: dict | None = None) -> None:
        if self.eval_with_shadow:
            self.ema.swap()

    def before_test_epoch(self, runner: Any) -> None:
        if self.eval_with_shadow:
            self.ema.swap()

    def after_test_epoch(self, runner: Any, metrics: dict | None = None) -> None:
        if self.eval_with_shadow:
            self.ema.swap()

    def before_save_checkpoint(self, runner: Any, checkpoint: dict) -> None:
        checkpoint[CHECKPOINT_KEY] = self.ema.state_dict()

    def after_load_checkpoint(self, runner: Any, checkpoint: dict) -> None:
        """Restore the EMA state (``--resume`` continues exactly); a checkpoint without one initialises the
        shadow from its weights, as mmengine's EMAHook does."""
        self.before_run(runner)  # a checkpoint may be loaded before the run starts
        state = checkpoint.get(CHECKPOINT_KEY)
        if state is not None:
            try:
                self.ema.load_state_dict(state)
            except (KeyError, ValueError) as err:
                if self.strict_load:
                    raise
                runner.logger.warning(f'TrainableEMAHook: EMA state not restored ({err})')
            else:
                return
        weights = {k[len('module.'):] if k.startswith('module.') else k: v
                   for k, v in checkpoint.get('state_dict', {}).items()}
        weights, _ = adapt_base_state_dict(weights, self.ema.model)
        found = self.ema.init_from_state_dict(weights)
        runner.logger.info(f"TrainableEMAHook: shadow initialised from the checkpoint's weights "
                           f'({found} of {len(self.ema.shadow)} tensors found)')
