"""LoRA through peft on any submodule of a model: inject, merge back, export, load base weights.

``LoRA.apply`` injects peft's LoRA layers in place (``peft.inject_adapter_in_model``) into one scope (the
whole model, or e.g. only its ``language_model``): no ``PeftModel`` wrapper, so every key outside the targeted
layers keeps its name; a targeted layer ``X`` holds ``X.base_layer.*`` and ``X.lora_{A,B}.<adapter>.weight``.
As in peft, the scope's own parameters are frozen except the LoRA ones and ``modules_to_save`` copies; the
rest of the model keeps its ``requires_grad``.

peft is an optional dependency (extras ``dev`` / ``sa2va``): it is imported where it is used, so the core
imports without it.
"""
from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ovseg.registry import PEFT_WRAPPERS

from .matching import (
    get_submodule,
    match_module_names,
    restore_wrapper_params,
    snapshot_wrapper_params,
    wrapper_internal_names,
)

_LORA_KEY_RE = re.compile(r'\.lora_(A|B|embedding_A|embedding_B|magnitude_vector)\.|\.modules_to_save\.')


def _peft() -> Any:
    try:
        import peft
    except ImportError as err:  # optional dependency
        raise ImportError("LoRA needs the 'peft' package: pip install 'ovseg[sa2va]' (or pip install peft)") \
            from err
    return peft


@PEFT_WRAPPERS.register_module(name='LoRA')
class LoRA:
    """LoRA on the layers of ``module`` selected by ``targets`` (``W x + (alpha / r) · B A x``).

    Args:
        targets: regex over module names (whole-name match) or a list of names / dotted suffixes, relative
            to ``module``. Sa2VA: every ``nn.Linear`` of the LLM but ``lm_head``.
        r, alpha, dropout: LoRA rank, scale numerator and dropout on the LoRA input. Defaults follow peft's
            ``LoraConfig`` (r=8, lora_alpha=8 there; we use alpha=16 = 2r, the ratio of Sa2VA's r128/α256).
        modules_to_save: modules of the scope trained in full (peft keeps a frozen original next to a trainable
            copy, keys ``X.original_module.*`` and ``X.modules_to_save.<adapter>.*``).
        module: the scope, a dotted submodule name ('' = the whole model).
        adapter_name: peft adapter name (key segment of the LoRA weights).
        lora_kwargs: further ``peft.LoraConfig`` arguments (e.g. ``use_rslora``, ``init_lora_weights``).
    """

    def __init__(self, targets: str | Sequence[str], r: int = 8, alpha: float = 16, dropout: float = 0.0,
                 modules_to_save: str | Sequence[str] | None = None, module: str = '',
                 adapter_name: str = 'default', **lora_kwargs: Any) -> None:
        if int(r) < 1:
            raise ValueError(f'LoRA rank r must be >= 1, got {r}')
        ours = dict(target_modules='targets', lora_alpha='alpha', lora_dropout='dropout')
        for key in ours.keys() & lora_kwargs.keys():
            raise ValueError(f'LoRA: give {key!r} as {ours[key]!r}')
        self.targets, self.r, self.alpha, self.dropout = targets, int(r), float(alpha), float(dropout)
        self.modules_to_save, self.module, self.adapter_name = modules_to_save, module, adapter_name
        self.lora_kwargs = dict(lora_kwargs)

    def apply(self, model: nn.Module) -> list[str]:
        """Inject into ``model`` in place; returns the wrapped layer names (relative to the model)."""
        peft = _peft()
        scope = get_submodule(model, self.module)
        exclude = wrapper_internal_names(scope)
        names = match_module_names(scope, self.targets, 'LoRA targets', exclude=exclude)
        save = None
        if self.modules_to_save:
            save = match_module_names(scope, self.modules_to_save, 'LoRA modules_to_save', exclude=exclude)
            overlap = sorted(set(names) & set(save))
            if overlap:
                raise ValueError(f'LoRA: modules {overlap} are both targets and modules_to_save')
        config = peft.LoraConfig(r=self.r, lora_alpha=self.alpha, lora_dropout=self.dropout,
                                 target_modules='|'.join(re.escape(n) for n in names), **self.lora_kwargs)
        before = snapshot_wrapper_params(model)
        peft.inject_adapter_in_model(config, scope, adapter_name=self.adapter_name)
        restore_wrapper_params(model, before)
        # modules_to_save wrapped here, by exact name: peft selects them by string suffix ('head' would also take
        # 'mask_head'); the wrapper is peft's, so the keys and merge behaviour are peft's.
        for name in save or ():
            self._save_module(scope, name, peft.utils.other.ModulesToSaveWrapper)
        lora_type = peft.tuners.lora.LoraLayer
        wrapped = {n for n, m in scope.named_modules() if isinstance(m, lora_type)
                   and self.adapter_name in m.lora_A.keys() | m.lora_embedding_A.keys()}
        if wrapped != set(names):
            raise RuntimeError(f'peft adapted {sorted(wrapped ^ set(names))} differently than selected')
        prefix = f'{self.module}.' if self.module else ''
        return [prefix + n for n in names]

    def _save_module(self, scope: nn.Module, name: str, wrapper_cls: type) -> None:
        target = scope.get_submodule(name)
        if isinstance(target, wrapper_cls):
            target.update(self.adapter_name)
            target.set_adapter(self.adapter_name, inference_mode=False)
            return
        wrapper = wrapper_cls(target, self.adapter_name)
        wrapper.set_adapter(self.adapter_name, inference_mode=False)  # trainable copy, frozen original
        _replace(scope, name, wrapper)


def _replace(model: nn.Module, name: str, new: nn.Module) -> None:
    parent_name, _, child = name.rpartition('.')
    setattr(model.get_submodule(parent_name) if parent_name else model, child, new)


def merge_lora(model: nn.Module) -> nn.Module:
    """Fold every active LoRA adapter into its base weight and restore plain modules and key names.

    ``X.base_layer.weight`` becomes ``X.weight`` (``W + scaling · ΔW`` as peft's ``merge``), a
    ``modules_to_save`` wrapper becomes its trained copy; outputs are unchanged up to float rounding.
    In place; returns ``model``.
    """
    peft = _peft()
    lora_type, save_type = peft.tuners.lora.LoraLayer, peft.utils.other.ModulesToSaveWrapper
    for name, module in [(n, m) for n, m in model.named_modules() if isinstance(m, (lora_type, save_type))]:
        if isinstance(module, lora_type):
            module.merge()
            _replace(model, name, module.get_base_layer())
        else:
            active = module.active_adapters
            if len(active) != 1:
                raise ValueError(f'{name}: cannot merge modules_to_save with {len(active)} active adapters')
            _replace(model, name, module.modules_to_save[active[0]])
    for module in model.modules():
        if 'peft_config' in vars(module):
            del module.peft_config
    return model


def lora_state_dict(model: nn.Module) -> dict[str, Tensor]:
    """The LoRA factors and ``modules_to_save`` copies only (what a LoRA fine-tune adds to the base)."""
    return {k: v for k, v in model.state_dict().items() if _LORA_KEY_RE.search(k)}


def lora_metadata(model: nn.Module) -> dict[str, dict]:
    """What ``merge_lora_state_dict`` needs besides the weights (checkpoints carry it in ``meta['lora']``).

    ``layers``: ``{name: dict(kind, adapter, scaling, fan_in_fan_out, groups)}`` per LoRA layer (one active
    adapter each); ``modules_to_save``: ``{name: adapter}``. Plain Python values, so weights-only loading
    reads them.
    """
    peft = _peft()
    layers, saved = {}, {}
    for name, m in model.named_modules():
        if isinstance(m, peft.tuners.lora.LoraLayer):
            active = list(m.active_adapters)
            if len(active) != 1:
                raise ValueError(f'{name}: {len(active)} active LoRA adapters; the state-dict merge needs one')
            base = m.get_base_layer()
            layers[name] = dict(kind=type(base).__name__, adapter=active[0],
                                scaling=float(m.scaling[active[0]]),
                                fan_in_fan_out=bool(getattr(m, 'fan_in_fan_out', False)),
                                groups=int(getattr(base, 'groups', 1)))
        elif isinstance(m, peft.utils.other.ModulesToSaveWrapper):
            saved[name] = m.active_adapters[0]
    return dict(layers=layers, modules_to_save=saved)


_FACTOR_RE = re.compile(r'^(?P<name>.+)\.lora_(?P<kind>A|embedding_A)\.(?P<adapter>[^.]+)(\.weight)?$')


def infer_lora_metadata(state_dict: Mapping[str, Tensor], alpha: float, rslora: bool = False) -> dict[str, dict]:
    """``lora_metadata`` rebuilt from the keys alone for checkpoints written without it: every layer gets
    ``scaling = alpha / r`` (``alpha / sqrt(r)`` with rsLoRA), ``r`` read from its A factor."""
    layers, saved = {}, {}
    for key, value in state_dict.items():
        m = _FACTOR_RE.match(key)
        if m:
            r = value.shape[0]  # A is (r, in) for Linear, (r, in, kh, kw) for Conv2d, (r, num) for Embedding
            kind = 'Embedding' if m['kind'] == 'embedding_A' else ('Conv2d' if value.dim() == 4 else 'Linear')
            layers[m['name']] = dict(kind=kind, adapter=m['adapter'], fan_in_fan_out=False, groups=1,
                                     scaling=float(alpha) / (r ** 0.5 if rslora else r))
        elif '.modules_to_save.' in key:
            name, _, rest = key.partition('.modules_to_save.')
            saved[name] = rest.split('.')[0]
    return dict(layers=layers, modules_to_save=saved)


def _delta_weight(name: str, info: Mapping, a: Tensor, b: Tensor, dtype: torch.dtype) -> Tensor:
    """peft's ``get_delta_weight`` for Linear / Embedding / Conv2d, from the two factors."""
    cast = a.device.type == 'cpu' and dtype in (torch.float16, torch.bfloat16)
    if cast:  # peft merges half-precision factors in float32 on CPU
        a, b = a.float(), b.float()
    kind, scaling = info['kind'], info['scaling']
    if kind == 'Linear':
        delta = b @ a
        delta = (delta.T if info['fan_in_fan_out'] else delta) * scaling
    elif kind == 'Embedding':
        delta = (b @ a).T * scaling
    elif kind == 'Conv2d':
        if a.shape[2:4] == (1, 1) and b.shape[2:4] == (1, 1):
            delta = (b.squeeze(3).squeeze(2) @ a.squeeze(3).squeeze(2)).unsqueeze(2).unsqueeze(3) * scaling
        else:
            delta = F.conv2d(a.transpose(0, 1), b)
            delta = delta * scaling if info['groups'] > 1 else delta.transpose(0, 1) * scaling
    else:
        raise ValueError(f'{name}: LoRA on {kind} cannot be merged from a state dict; '
                         'build the model and call ovseg.models.peft.merge_lora(model)')
    return delta.to(dtype) if cast else delta


def merge_lora_state_dict(state_dict: Mapping[str, Tensor], metadata: Mapping[str, Mapping]) -> dict[str, Tensor]:
    """A LoRA checkpoint's state dict with the adapters folded in and the base key names restored.

    Equals the state dict of ``merge_lora(model)`` (same arithmetic as peft's merge).
    """
    sd = dict(state_dict)
    out: dict[str, Tensor] = {}
    for name, info in metadata.get('layers', {}).items():
        ad = info['adapter']
        if info['kind'] == 'Embedding':
            a_key, b_key = f'{name}.lora_embedding_A.{ad}', f'{name}.lora_embedding_B.{ad}'
        else:
            a_key, b_key = f'{name}.lora_A.{ad}.weight', f'{name}.lora_B.{ad}.weight'
        w_key = f'{name}.base_layer.weight'
        missing = [k for k in (a_key, b_key, w_key) if k not in sd]
        if missing:
            raise KeyError(f'LoRA layer {name}: keys {missing} are not in the state dict')
        if f'{name}.lora_magnitude_vector.{ad}' in sd or f'{name}.lora_magnitude_vector.{ad}.weight' in sd:
            raise ValueError(f'{name}: DoRA weights cannot be merged from a state dict; use merge_lora(model)')
        a, b, w = sd.pop(a_key), sd.pop(b_key), sd.pop(w_key)
        out[f'{name}.weight'] = w + _delta_weight(name, info, a, b, w.dtype)
        for key in [k for k in sd if k.startswith(f'{name}.base_layer.')]:
            out[f'{name}.{key[len(name) + len(".base_layer."):]}'] = sd.pop(key)
    for name, ad in metadata.get('modules_to_save', {}).items():
        kept = f'{name}.modules_to_save.{ad}.'
        for key in [k for k in sd if k.startswith(kept)]:
            out[f'{name}.{key[len(kept):]}'] = sd.pop(key)
        for key in [k for k in sd if k.startswith(f'{name}.original_module.')]:
            del sd[key]
    leftover = sorted(k for k in sd if _LORA_KEY_RE.search(k) or '.base_layer.' in k or '.original_module.' in k)
    if leftover:
        raise ValueError(f'LoRA keys without merge metadata (inactive adapters or a foreign checkpoint): '
                         f'{leftover[:8]}{" ..." if len(leftover) > 8 else ""}')
    sd.update(out)
    return sd


_PEFT_SEGMENT_RE = re.compile(r'\.(base_layer|original_module|modules_to_save\.[^.]+)(?=\.)')


def base_key(key: str) -> str:
    """The key a parameter had before LoRA wrapping (``X.base_layer.weight`` → ``X.weight``)."""
    return _PEFT_SEGMENT_RE.sub('', key)


def adapt_base_state_dict(state_dict: Mapping[str, Tensor], model: nn.Module) -> tuple[dict[str, Tensor], int]:
    """Rename a checkpoint written before LoRA wrapping so it loads into the wrapped ``model``.

    Each model key whose base name differs (``X.base_layer.weight``, ``X.original_module.*``,
    ``X.modules_to_save.<adapter>.*``) takes the checkpoint's base-named tensor when the checkpoint lacks the
    wrapped name; checkpoints already in wrapped names pass through. Returns the new dict and the number of
    keys it filled from base names.
    """
    sd = dict(state_dict)
    used, filled = set(), 0
    for key in model.state_dict():
        base = base_key(key)
        if base != key and key not in sd and base in sd:
            sd[key] = sd[base]
            used.add(base)
            filled += 1
    model_keys = set(model.state_dict())
    for base in used - model_keys:
        del sd[base]
    return sd, filled
