"""FSDP for ovseg through mmengine's ``FlexibleRunner``: ``OVSegFSDPStrategy`` and config-buildable wrap policies.

mmengine 0.10.7's ``FSDPStrategy`` cannot resume, nor run on a machine without CUDA, as it is (found with torch
2.14 on CPU/gloo, docs/fsdp.md):

1. ``load_optim_state_dict`` calls ``FSDP.optim_state_dict_to_load(state_dict, model, optim)``, the pre-2.1
   positional order; torch >= 2.1 takes ``(model, optim, optim_state_dict)`` and the resume dies with
   ``TypeError: unhashable type: 'dict'``. Fixed here by passing keywords.
2. Its model wrapper gets ``device_id=int(LOCAL_RANK)``, which makes FSDP move the model to CUDA. Without CUDA,
   ``device_id=torch.device('cpu')`` is injected instead; with CUDA mmengine's behaviour is kept.
3. Its default ``state_dict_cfg='local'`` writes one ShardedTensor file per rank (``iter_N.pth/rank0.pth``)
   that ``torch.load(weights_only=True)`` refuses. The default here is ``'full'``: one ordinary checkpoint,
   gathered on rank 0 with CPU offload, loadable anywhere (also without FSDP, by ``OVSegRunner``).
4. torch's (2.14) full optimizer state dict with ``use_orig_params=True`` and ``offload_to_cpu=True`` on a CPU
   compute device saves every Adam state as the last one gathered (``exp_avg`` == ``exp_avg_sq``): its copy to
   the CPU is a no-op there and the views keep aliasing a reused buffer. Without CUDA the optimizer state is
   gathered without offload (which clones); with CUDA the offload copies and is kept.

Added for ovseg's trainable-set configs (``peft`` LoRA + ``trainable_params``, applied by
``OVSegFlexibleRunner`` before this strategy wraps the model):

* a model with frozen and trainable parameters needs ``use_orig_params=True`` (mmengine's wrapper default;
  an explicit ``False`` is refused with a message, FSDP's own error comes at the first backward otherwise);
* a full-state-dict load is checked like ``OVSegRunner.load_checkpoint`` does (weights-only read, ``revise_keys``,
  LoRA base-name routing, resume = exact fit, ``load_from`` = partial fit with a warning), against the parameter
  names and shapes recorded before sharding;
* ``auto_wrap_policy`` from a config: ``dict(type='size_based_auto_wrap_policy', min_num_params=...)`` or
  ``dict(type='layer_name_auto_wrap_policy', layer_names=['Qwen2DecoderLayer'])`` (mmengine's wrapper looks the
  type up in the ``FUNCTIONS`` registry; these two are registered there by this module).
"""
from __future__ import annotations

import copy
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from typing import Any

import torch
from mmengine._strategy import FSDPStrategy
from mmengine.model import is_model_wrapper
from mmengine.registry import FUNCTIONS
from torch import Tensor, nn
from torch.distributed.fsdp import FullyShardedDataParallel as FSDP
from torch.distributed.fsdp.wrap import size_based_auto_wrap_policy

from ovseg.registry import STRATEGIES

from .runner import _has_peft_layers, fit_checkpoint_state_dict

__all__ = ['OVSegFSDPStrategy', 'UnshardedLayout', 'clean_param_name', 'is_fsdp_model',
           'layer_name_auto_wrap_policy']

# Name segments FSDP (and activation checkpointing) insert into parameter names of the wrapped module.
_WRAPPER_SEGMENTS = ('_fsdp_wrapped_module.', '_checkpoint_wrapped_module.')

if 'size_based_auto_wrap_policy' not in FUNCTIONS.module_dict:
    FUNCTIONS.register_module(name='size_based_auto_wrap_policy', module=size_based_auto_wrap_policy)


@FUNCTIONS.register_module(force=True)
def layer_name_auto_wrap_policy(module: nn.Module, recurse: bool, nonwrapped_numel: int,
                                layer_names: Sequence[str] = ()) -> bool:
    """FSDP auto-wrap policy: every module whose class name is in ``layer_names`` becomes an FSDP unit.

    torch's ``transformer_auto_wrap_policy`` wants the classes themselves, which a config cannot hold;
    names (``'Qwen2DecoderLayer'``, ``'Qwen3DecoderLayer'``, ``'InternVisionEncoderLayer'``) can. Config:
    ``auto_wrap_policy=dict(type='layer_name_auto_wrap_policy', layer_names=[...])``.
    """
    if recurse:
        return True
    return type(module).__name__ in set(layer_names)


def clean_param_name(name: str) -> str:
    """A parameter name of an FSDP-wrapped module with the wrapper segments removed (the checkpoint's name)."""
    for segment in _WRAPPER_SEGMENTS:
        name = name.replace(segment, '')
    return name


def is_fsdp_model(model: nn.Module) -> bool:
    """Whether ``model`` is, or contains, an FSDP unit."""
    return any(isinstance(m, FSDP) for m in model.modules())


class UnshardedLayout:
    """Names, shapes, dtypes and ``requires_grad`` of a model's state before FSDP shards it, as meta tensors
    (no memory). Stands in for the model where a check needs ``state_dict()`` / ``named_parameters()``
    (``check_fit``, ``adapt_base_state_dict``) once the real tensors are flattened shards."""

    def __init__(self, model: nn.Module) -> None:
        self._state = OrderedDict((k, torch.empty(v.shape, dtype=v.dtype, device='meta'))
                                  for k, v in model.state_dict().items())
        self._params = [(name, torch.empty(p.shape, dtype=p.dtype, device='meta').requires_grad_(p.requires_grad))
                        for name, p in model.named_parameters()]
        self.has_peft = _has_peft_layers(model)

    def state_dict(self) -> OrderedDict[str, Tensor]:
        return OrderedDict(self._state)

    def named_parameters(self) -> Iterator[tuple[str, Tensor]]:
        return iter(self._params)


@STRATEGIES.register_module()
class OVSegFSDPStrategy(FSDPStrategy):
    """mmengine's ``FSDPStrategy`` fixed for torch >= 2.1, CPU/gloo and ovseg's frozen/trainable models.

    Args (as ``FSDPStrategy``; what differs):
        model_wrapper: the ``MMFullyShardedDataParallel`` config. ``use_orig_params`` must stay True (the
            default) for models with frozen parameters. ``auto_wrap_policy`` may be a dict naming a function of
            the ``FUNCTIONS`` registry (see the module docstring). ``device_id`` is set to the CPU on machines
            without CUDA; leave it out of configs.
        state_dict_cfg: ``'full'`` by default (mmengine: ``'local'``, whose per-rank ShardedTensor files
            weights-only ``torch.load`` refuses: ovseg loads every checkpoint weights-only). ``'full'`` gathers
            model and optimizer state on rank 0, offloaded to the CPU, and writes one ordinary file.
        **kwargs: the other ``FSDPStrategy`` arguments (``skip_init_weights``, ``activation_checkpointing``...).
    """

    def __init__(self, *, model_wrapper: dict | None = None, state_dict_cfg: str | dict = 'full',
                 **kwargs: Any) -> None:
        super().__init__(model_wrapper=model_wrapper, state_dict_cfg=state_dict_cfg, **kwargs)
        self._layout: UnshardedLayout | None = None
        self._resuming = False
        self._loading: tuple[str, dict] | None = None

    # ------------------------------------------------------------------------------------- model
    def build_model(self, model: nn.Module | dict) -> nn.Module:
        model = super().build_model(model)
        self._layout = UnshardedLayout(model)
        return model

    def _wrap_model(self, model: nn.Module) -> nn.Module:
        if is_model_wrapper(model):
            return model
        wrapper = copy.deepcopy(dict(self.model_wrapper or dict(type='MMFullyShardedDataParallel')))
        if isinstance(wrapper.get('auto_wrap_policy'), dict):  # mmengine pops its 'type': keep the config intact
            wrapper['auto_wrap_policy'] = dict(wrapper['auto_wrap_policy'])
        if not torch.cuda.is_available():
            wrapper['device_id'] = torch.device('cpu')  # mmengine passes device_id=LOCAL_RANK: a CUDA index
            if getattr(self.optim_state_dict_config, 'offload_to_cpu', False):
                # torch's FSDP.optim_state_dict (use_orig_params) gathers every state ('exp_avg', 'exp_avg_sq')
                # through one reused buffer and copies the result out with `.cpu()`, a no-op on the CPU: every
                # state would alias the buffer and end up holding the last one (exp_avg == exp_avg_sq). Without
                # offload it clones; offloading to the CPU means nothing on the CPU anyway.
                self.optim_state_dict_config.offload_to_cpu = False
        grads = {p.requires_grad for p in model.parameters()}
        if len(grads) > 1 and not wrapper.get('use_orig_params', True):
            raise ValueError('OVSegFSDPStrategy: the model has frozen and trainable parameters (peft / '
                             'trainable_params); FSDP needs model_wrapper.use_orig_params=True for that')
        self.model_wrapper = wrapper
        return super()._wrap_model(model)

    # ------------------------------------------------------------------------------------- loading
    def load_optim_state_dict(self, state_dict: dict) -> None:
        """Load a (full or local) optimizer state dict into the sharded optimizer.

        mmengine 0.10.7 passes ``(state_dict, model, optim)`` positionally, the order of torch < 2.1; keywords
        work with every torch version that has ``optim_state_dict_to_load``.
        """
        optim_state_dict = FSDP.optim_state_dict_to_load(
            model=self.model, optim=self.optim_wrapper.optimizer, optim_state_dict=state_dict)
        self.optim_wrapper.load_state_dict(optim_state_dict)
        steps = sorted({int(s['step']) for s in (state_dict.get('state') or {}).values()
                        if isinstance(s, dict) and 'step' in s})
        self.logger.info(f'OVSegFSDPStrategy: optimizer state loaded ({len(state_dict.get("state") or {})} '
                         f'parameter states, step {"/".join(map(str, steps)) or "n/a"})')

    def resume(self, filename: str, **kwargs: Any) -> dict:
        self._resuming = True
        try:
            return super().resume(filename, **kwargs)
        finally:
            self._resuming = False

    def load_checkpoint(self, filename: str, **kwargs: Any) -> dict:
        callback = kwargs.get('callback')

        def remember(checkpoint: dict) -> None:
            meta = checkpoint.get('meta')
            self._loading = (str(filename), meta if isinstance(meta, dict) else {})
            if callback is not None:
                callback(checkpoint)

        kwargs['callback'] = remember
        try:
            return super().load_checkpoint(filename, **kwargs)
        finally:
            self._loading = None

    def load_model_state_dict(self, state_dict: dict, *, strict: bool = False,
                              revise_keys: list = [(r'^module.', '')]) -> None:  # noqa: B006 (mmengine's)
        """Load a full state dict after ovseg's fit check (resume: exact; ``load_from``: partial + warning).

        ``revise_keys`` apply (mmengine's FSDPStrategy ignores them). Local (sharded) state dicts go to
        mmengine's method unchecked.
        """
        if not self._is_full_state_dict() or self._layout is None:
            return super().load_model_state_dict(state_dict, strict=strict, revise_keys=revise_keys)
        filename, meta = self._loading or ('<state dict>', {})
        revised, filled = fit_checkpoint_state_dict(
            filename, state_dict, self._layout, revise_keys, exact=self._resuming, warn=self.logger.warning,
            frozen_omitted=bool(meta.get('trainable_only')), peft=self._layout.has_peft)
        if filled:
            self.logger.info(f'{filled} base-named tensors routed into LoRA-wrapped modules')
        self.model.load_state_dict(revised, strict=strict)
