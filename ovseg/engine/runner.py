"""``OVSegRunner``: mmengine's Runner plus the trainable-set declaration of ovseg configs.

What it adds, in the order a run meets it:

1. ``build_model`` applies the top-level ``peft`` wrappers, then ``trainable_params``, and logs the table of
   trainable parameters — before ``wrap_model``, because DDP fixes the set of trained parameters when it wraps.
2. ``build_optim_wrapper`` defaults to ``TrainableParamsOptimWrapperConstructor`` (only parameters that train
   enter the optimizer) and warns when another constructor put frozen tensors in.
3. ``build_dataloader`` refuses a batch-aware sampler (``MultiSourceSampler``) whose ``batch_size`` differs
   from the dataloader's: the per-batch layout would silently shift.
4. ``load_checkpoint`` loads checkpoints written before LoRA wrapping into the wrapped model (base key names
   are routed to ``X.base_layer.*`` etc.), and ``save_checkpoint`` records the LoRA merge metadata in
   ``meta['lora']`` so ``tools/model_converters/merge_lora.py`` works from the checkpoint alone.
"""
from __future__ import annotations

import re
from collections import OrderedDict
from typing import Any

from mmengine.model import is_model_wrapper
from mmengine.runner import Runner
from mmengine.runner.checkpoint import _load_checkpoint, _load_checkpoint_to_model
from torch import nn
from torch.utils.data import DataLoader

from ovseg.models.peft import adapt_base_state_dict, configure_trainable, lora_metadata
from ovseg.registry import RUNNERS

from .optimizers import frozen_params_in_optimizer

DEFAULT_CONSTRUCTOR = 'TrainableParamsOptimWrapperConstructor'


def _has_peft_layers(model: nn.Module) -> bool:
    return any(type(m).__module__.startswith('peft.') for m in model.modules())


@RUNNERS.register_module()
class OVSegRunner(Runner):
    """Runner for ovseg configs; ``configs/_base_/default_runtime.py`` selects it with ``runner_type``.

    Reads the optional top-level config keys ``peft`` (list of ``PEFT_WRAPPERS`` configs) and
    ``trainable_params`` (``dict(train=[...], freeze=[...])``), see ``ovseg/models/peft``.
    """

    @property
    def unwrapped_model(self) -> nn.Module:
        return self.model.module if is_model_wrapper(self.model) else self.model

    def build_model(self, model: nn.Module | dict) -> nn.Module:
        model = super().build_model(model)
        peft = self.cfg.get('peft')
        if peft and hasattr(model, 'init_weights') and not getattr(model, 'is_init', True):
            # init_cfg-driven initialisation (incl. 'Pretrained' loads) must see the base names and must not
            # re-initialise the adapters' zero up-projections later; the runner's own call then does nothing.
            model.init_weights()
        configure_trainable(model, peft, self.cfg.get('trainable_params'), logger=self.logger)
        return model

    def build_optim_wrapper(self, optim_wrapper: Any) -> Any:
        if isinstance(optim_wrapper, dict) and 'optimizer' in optim_wrapper and 'constructor' not in optim_wrapper \
                and isinstance(optim_wrapper['optimizer'], dict):
            optim_wrapper = type(optim_wrapper)(optim_wrapper)
            optim_wrapper['constructor'] = DEFAULT_CONSTRUCTOR
        built = super().build_optim_wrapper(optim_wrapper)
        frozen = frozen_params_in_optimizer(built)
        if frozen:
            self.logger.warning(f'the optimizer holds {frozen} frozen parameter tensors (requires_grad=False); '
                                f'{DEFAULT_CONSTRUCTOR} leaves them out')
        return built

    @staticmethod
    def build_dataloader(dataloader: DataLoader | dict, seed: int | None = None,
                         diff_rank_seed: bool = False) -> DataLoader:
        loader = Runner.build_dataloader(dataloader, seed=seed, diff_rank_seed=diff_rank_seed)
        batch_sampler = getattr(loader, 'batch_sampler', None)
        sampler = getattr(batch_sampler, 'sampler', None)
        sampler = getattr(loader, 'sampler', None) if sampler is None else sampler
        expected = getattr(sampler, 'batch_size', None)
        actual = loader.batch_size if loader.batch_size is not None else getattr(batch_sampler, 'batch_size', None)
        if expected is not None and actual is not None and expected != actual:
            raise ValueError(f'{type(sampler).__name__} lays out batches of {expected} samples but the dataloader '
                             f'batches {actual}: set the same batch_size in both')
        return loader

    def load_checkpoint(self, filename: str, map_location: str | Any = 'cpu', strict: bool = False,
                        revise_keys: list = [(r'^module.', '')]) -> dict:  # noqa: B006 (mmengine's signature)
        model = self.unwrapped_model
        if not _has_peft_layers(model):
            return super().load_checkpoint(filename, map_location=map_location, strict=strict,
                                           revise_keys=revise_keys)
        checkpoint = _load_checkpoint(filename, map_location=map_location)
        self.call_hook('after_load_checkpoint', checkpoint=checkpoint)
        state_dict = checkpoint.get('state_dict', checkpoint)
        revised = OrderedDict()
        for key, value in state_dict.items():
            for pattern, replacement in revise_keys:  # mmengine's revise_keys, applied before the routing
                key = re.sub(pattern, replacement, key)
            revised[key] = value
        adapted, filled = adapt_base_state_dict(revised, model)
        adapted = OrderedDict(adapted)
        adapted._metadata = getattr(state_dict, '_metadata', OrderedDict())
        _load_checkpoint_to_model(model, dict(state_dict=adapted), strict, revise_keys=[])
        self._has_loaded = True
        self.logger.info(f'Load checkpoint from {filename}'
                         + (f' ({filled} base-named tensors routed into LoRA-wrapped modules)' if filled else ''))
        return checkpoint

    def save_checkpoint(self, out_dir: str, filename: str, file_client_args: dict | None = None,
                        save_optimizer: bool = True, save_param_scheduler: bool = True, meta: dict | None = None,
                        by_epoch: bool = True, backend_args: dict | None = None) -> None:
        model = self.unwrapped_model
        if _has_peft_layers(model):
            meta = dict(meta or {})
            meta.setdefault('lora', lora_metadata(model))
        super().save_checkpoint(out_dir, filename, file_client_args, save_optimizer=save_optimizer,
                                save_param_scheduler=save_param_scheduler, meta=meta, by_epoch=by_epoch,
                                backend_args=backend_args)
