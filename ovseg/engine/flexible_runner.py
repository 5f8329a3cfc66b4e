"""``OVSegFlexibleRunner``: mmengine's ``FlexibleRunner`` (strategies: FSDP, DDP, DeepSpeed...) with what
``OVSegRunner`` gives the plain Runner.

Select it with ``runner_type='OVSegFlexibleRunner'`` and a ``strategy`` dict (``configs/_base_/fsdp.py``;
``tools/train.py`` builds it through ``RUNNERS.build``). Shared with ``OVSegRunner`` (``ovseg/engine/runner.py``):

1. ``peft`` + ``trainable_params`` are applied to the built model *before* the strategy wraps it (FSDP / DDP fix
   the trained set when they wrap); the strategy then receives the built module.
2. The optimizer config defaults to ``TrainableParamsOptimWrapperConstructor``; frozen tensors put into the
   optimizer by another constructor are reported.
3. The work-dir lock (taken as soon as the strategy has set up the process group), the collective heartbeat,
   the strict ``load_or_resume`` rule, every rank's random streams saved in checkpoints and restored by
   ``ResumableIterBasedTrainLoop`` (a runner-level hook it calls), atomic single-file checkpoint writes,
   ``meta['lora']`` for LoRA merges, the batch-size check of batch-aware samplers.
4. Weights-only loading: checkpoints are read through mmengine's loaders, which ``ovseg.registry`` routes to
   weights-only loading with ovseg's allow-list; ``OVSegFSDPStrategy`` checks how a full state dict fits.

Also reads the top-level ``compile`` key (``FlexibleRunner.from_cfg`` drops it in mmengine 0.10.7).
"""
from __future__ import annotations

from typing import Any

from mmengine.dist import is_main_process
from mmengine.model import is_model_wrapper
from mmengine.runner import FlexibleRunner
from torch import nn
from torch.utils.data import DataLoader

from ovseg.models.peft import lora_metadata
from ovseg.registry import RUNNERS, STRATEGIES
from ovseg.utils.dist_heartbeat import start_heartbeat
from ovseg.utils.random_state import gather_random_states

from .runner import (
    _has_peft_layers,
    _OVSegRunnerMixin,
    atomic_checkpoint_target,
    check_sampler_batch_size,
    is_local_checkpoint_dir,
    prepare_trainable_model,
    warn_frozen_in_optimizer,
    with_trainable_constructor,
)
from .work_dir_lock import WorkDirLock


@RUNNERS.register_module()
class OVSegFlexibleRunner(_OVSegRunnerMixin, FlexibleRunner):
    """``FlexibleRunner`` for ovseg configs (``peft``, ``trainable_params``, exact resume); see the module doc."""

    @classmethod
    def from_cfg(cls, cfg: Any) -> OVSegFlexibleRunner:
        runner = super().from_cfg(cfg)
        compile_cfg = cfg.get('compile', False)
        if not isinstance(compile_cfg, (bool, dict)):
            raise TypeError(f'compile should be a bool or dict, got {type(compile_cfg).__name__}')
        runner._compile = compile_cfg
        return runner

    def build_strategy(self, strategy: Any = None, launcher: str = 'none', randomness: dict | None = None,
                       env_cfg: dict | None = None, experiment_name: str | None = None,
                       log_level: str | None = None) -> Any:
        """mmengine's, with the type looked up in ovseg's registry (the default scope is set only after the
        strategy), then the heartbeat and the work-dir lock once the process group exists."""
        if isinstance(strategy, dict) and isinstance(strategy.get('type'), str):
            strategy = dict(strategy, type=STRATEGIES.get(strategy['type']) or strategy['type'])
        env_cfg = env_cfg if env_cfg is not None else dict(dist_cfg=dict(backend='nccl'))
        built = super().build_strategy(strategy, launcher=launcher, randomness=randomness, env_cfg=env_cfg,
                                       experiment_name=experiment_name, log_level=log_level)
        self.strategy = built  # rank / logger / distributed below read it
        if built.distributed:
            start_heartbeat(timeout_s=(env_cfg.get('dist_cfg') or {}).get('timeout'))
        self._work_dir_lock = WorkDirLock(self.work_dir)
        self._acquire_work_dir()
        return built

    @staticmethod
    def build_dataloader(dataloader: DataLoader | dict, seed: int | None = None,
                         diff_rank_seed: bool = False) -> DataLoader:
        return check_sampler_batch_size(
            FlexibleRunner.build_dataloader(dataloader, seed=seed, diff_rank_seed=diff_rank_seed))

    # ------------------------------------------------------------------------------------- model / optimizer
    def _build_trainable_model(self) -> None:
        """Build the model (through the strategy: ``skip_init_weights`` etc. apply) and apply ``peft`` +
        ``trainable_params`` before ``strategy.prepare`` wraps it; default the optimizer constructor."""
        if not getattr(self, '_trainable_ready', False) and not is_model_wrapper(self.model):
            model = prepare_trainable_model(self.strategy.build_model(self.model), self.cfg, self.logger)
            self._lora_meta = lora_metadata(model) if _has_peft_layers(model) else None  # names before wrapping
            self.model = model
            self._trainable_ready = True
        self.optim_wrapper = with_trainable_constructor(self.optim_wrapper)

    def train(self) -> nn.Module:
        self._build_trainable_model()
        return super().train()

    def val(self) -> dict:
        self._build_trainable_model()
        return super().val()

    def test(self) -> dict:
        self._build_trainable_model()
        return super().test()

    def load_or_resume(self) -> None:
        # FlexibleRunner calls this right after ``strategy.prepare`` built the optimizer: check it here
        if not getattr(self, '_optimizer_checked', False) and not isinstance(self.optim_wrapper, (dict, type(None))):
            warn_frozen_in_optimizer(self.optim_wrapper, self.logger)
            self._optimizer_checked = True
        super().load_or_resume()

    # ------------------------------------------------------------------------------------- checkpoints
    def call_hook(self, fn_name: str, **kwargs: Any) -> None:
        if fn_name == 'after_load_checkpoint':  # the strategy loads; the mixin's resume reads the meta
            meta = kwargs['checkpoint'].get('meta')
            self._loaded_meta = meta if isinstance(meta, dict) else {}
        super().call_hook(fn_name, **kwargs)

    def save_checkpoint(self, out_dir: str, filename: str, file_client_args: dict | None = None,
                        save_optimizer: bool = True, save_param_scheduler: bool = True, meta: dict | None = None,
                        by_epoch: bool = True, backend_args: dict | None = None) -> None:
        """FlexibleRunner's ``save_checkpoint`` plus every rank's random streams and ``meta['lora']``, written
        atomically when one process writes one local file (FSDP ``'full'``, DDP, single device).

        A collective (random states; FSDP gathers the full state dicts): call it on every rank, as
        ``CheckpointHook`` does.
        """
        meta = dict(meta or {})
        meta['random_states'] = gather_random_states()
        if getattr(self, '_lora_meta', None):
            meta.setdefault('lora', self._lora_meta)
        one_file = getattr(self.strategy, '_is_full_state_dict', lambda: True)()  # FSDP 'local': a folder per rank
        atomic = one_file and is_local_checkpoint_dir(out_dir, file_client_args, backend_args)
        with atomic_checkpoint_target(out_dir, filename, enabled=atomic, writer=is_main_process()) as target:
            super().save_checkpoint(out_dir, target, file_client_args, save_optimizer=save_optimizer,
                                    save_param_scheduler=save_param_scheduler, meta=meta, by_epoch=by_epoch,
                                    backend_args=backend_args)
