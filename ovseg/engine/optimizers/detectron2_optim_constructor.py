"""Parameter groups of detectron2 ``build_optimizer`` as FC-CLIP's ``train_net.py`` writes it.

mmengine's default constructor assigns weight decay by parameter *name* patterns and ``norm_decay_mult``; the
official recipe decides by *module type*: every trainable parameter starts at (``BASE_LR``, ``WEIGHT_DECAY``);
a parameter of a module whose name contains ``backbone`` gets ``lr × BACKBONE_MULTIPLIER``; parameters named
``relative_position_bias_table`` / ``absolute_pos_embed`` get weight decay 0; parameters of normalisation layers
(BatchNorm, SyncBatchNorm, GroupNorm, InstanceNorm, LayerNorm, LocalResponseNorm) get ``WEIGHT_DECAY_NORM``; of
``nn.Embedding`` layers ``WEIGHT_DECAY_EMBED``. A bare ``nn.Parameter`` (the pixel decoder's ``level_embed``,
the learnable ``logit_scale``) keeps the base decay, and frozen parameters (the CLIP) are left out. Only these
rules differ from a name-pattern config, and they decide e.g. that the decoder's ``query_feat`` (an Embedding)
is not decayed while the encoder's ``level_embed`` (a Parameter) is.
"""
from __future__ import annotations

import copy
from typing import Any

import torch
from mmengine.optim import OptimWrapper
from torch import nn

from ovseg.registry import OPTIM_WRAPPER_CONSTRUCTORS, OPTIM_WRAPPERS, OPTIMIZERS

__all__ = ['Detectron2OptimWrapperConstructor', 'detectron2_param_groups', 'NORM_MODULE_TYPES']

#: ``norm_module_types`` of FC-CLIP / Mask2Former ``train_net.py`` ``build_optimizer``.
NORM_MODULE_TYPES = (
    nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm, nn.GroupNorm, nn.InstanceNorm1d,
    nn.InstanceNorm2d, nn.InstanceNorm3d, nn.LayerNorm, nn.LocalResponseNorm)
ZERO_DECAY_PARAM_NAMES = ('relative_position_bias_table', 'absolute_pos_embed')


def detectron2_param_groups(model: nn.Module, lr: float, weight_decay: float, backbone_multiplier: float = 0.1,
                            weight_decay_norm: float = 0.0, weight_decay_embed: float = 0.0,
                            backbone_key: str = 'backbone') -> list[dict[str, Any]]:
    """Param groups with ``build_optimizer``'s per-parameter (lr, weight_decay), merged by equal values.

    Each group also lists its ``param_names`` (for logs and tests). Merging parameters that share both values
    into one group changes nothing for AdamW / SGD, whose hyper-parameters apply per parameter; it only keeps
    the optimizer step from looping over hundreds of one-tensor groups.
    """
    groups: dict[tuple[float, float], dict[str, Any]] = {}
    memo: set[int] = set()
    for module_name, module in model.named_modules():
        for param_name, param in module.named_parameters(recurse=False):
            if not param.requires_grad or id(param) in memo:
                continue
            memo.add(id(param))
            p_lr, p_wd = lr, weight_decay
            if backbone_key in module_name:
                p_lr = lr * backbone_multiplier
            if any(k in param_name for k in ZERO_DECAY_PARAM_NAMES):
                p_wd = 0.0
            if isinstance(module, NORM_MODULE_TYPES):
                p_wd = weight_decay_norm
            if isinstance(module, nn.Embedding):
                p_wd = weight_decay_embed
            group = groups.setdefault((p_lr, p_wd), dict(params=[], param_names=[], lr=p_lr,
                                                          weight_decay=p_wd))
            group['params'].append(param)
            group['param_names'].append(f'{module_name}.{param_name}' if module_name else param_name)
    if not groups:
        raise ValueError(f'{type(model).__name__} has no trainable parameters to optimize')
    return list(groups.values())


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class Detectron2OptimWrapperConstructor:
    """Build the optimizer wrapper with :func:`detectron2_param_groups` (FC-CLIP's ``build_optimizer``).

    Config::

        optim_wrapper = dict(
            type='AmpOptimWrapper', constructor='Detectron2OptimWrapperConstructor',
            optimizer=dict(type='AdamW', lr=1e-4, weight_decay=0.05),   # BASE_LR, WEIGHT_DECAY
            paramwise_cfg=dict(backbone_multiplier=0.1, weight_decay_norm=0.0, weight_decay_embed=0.0),
            clip_grad=dict(max_norm=0.01, norm_type=2))                # CLIP_TYPE full_model

    ``paramwise_cfg`` keys: ``backbone_multiplier`` (``SOLVER.BACKBONE_MULTIPLIER``), ``weight_decay_norm``
    (``SOLVER.WEIGHT_DECAY_NORM``, detectron2 default 0.0), ``weight_decay_embed`` (``SOLVER.WEIGHT_DECAY_EMBED``,
    Mask2Former/FC-CLIP default 0.0), ``backbone_key`` (module-name substring, ``'backbone'``).
    """

    PARAMWISE_KEYS = ('backbone_multiplier', 'weight_decay_norm', 'weight_decay_embed', 'backbone_key')

    def __init__(self, optim_wrapper_cfg: dict, paramwise_cfg: dict | None = None) -> None:
        if not isinstance(optim_wrapper_cfg, dict) or 'optimizer' not in optim_wrapper_cfg:
            raise TypeError('Detectron2OptimWrapperConstructor: optim_wrapper_cfg must be a dict with an '
                            f'"optimizer" entry, got {optim_wrapper_cfg!r}')
        self.optim_wrapper_cfg = copy.deepcopy(dict(optim_wrapper_cfg))
        self.paramwise_cfg = dict(paramwise_cfg or {})
        unknown = set(self.paramwise_cfg) - set(self.PARAMWISE_KEYS)
        if unknown:
            raise KeyError(f'Detectron2OptimWrapperConstructor: unknown paramwise_cfg keys {sorted(unknown)}; '
                           f'valid: {list(self.PARAMWISE_KEYS)}')
        optimizer_cfg = self.optim_wrapper_cfg['optimizer']
        for key in ('lr', 'weight_decay'):
            if key not in optimizer_cfg:
                raise KeyError(f'Detectron2OptimWrapperConstructor: optimizer config needs "{key}" '
                               '(BASE_LR / WEIGHT_DECAY)')

    def __call__(self, model: nn.Module) -> OptimWrapper:
        if hasattr(model, 'module'):  # DDP-wrapped: groups are built on the inner model's names
            model = model.module
        wrapper_cfg = copy.deepcopy(self.optim_wrapper_cfg)
        wrapper_cfg.setdefault('type', 'OptimWrapper')
        optimizer_cfg = wrapper_cfg.pop('optimizer')
        if isinstance(optimizer_cfg, torch.optim.Optimizer):
            raise TypeError('Detectron2OptimWrapperConstructor builds the optimizer itself; pass its config')
        optimizer_cfg['params'] = detectron2_param_groups(model, optimizer_cfg['lr'], optimizer_cfg['weight_decay'],
                                                          **self.paramwise_cfg)
        optimizer = OPTIMIZERS.build(optimizer_cfg)
        return OPTIM_WRAPPERS.build(wrapper_cfg, default_args=dict(optimizer=optimizer))
