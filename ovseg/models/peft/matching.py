"""One rule for naming what a wrapper or a trainable-set declaration applies to.

Module targets follow peft's ``target_modules`` convention so LoRA and adapters select alike: a string is a
regular expression that must match the *whole* module name (``re.fullmatch``); a list names modules exactly
or by a dotted suffix (``'q_proj'`` matches ``layers.0.self_attn.q_proj``). Parameter patterns of
``trainable_params`` are regular expressions searched anywhere in the parameter name (``re.search``), so
``r'\\.adapters\\.'`` or ``r'^sem_seg_head\\.'`` read naturally. A target or pattern that selects nothing is
an error: a typo must not silently train (or freeze) the wrong set.
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence

from torch import nn

# Parameters created by a wrapper (LoRA factors, modules_to_save copies, bottleneck adapters).
WRAPPER_PARAM_RE = re.compile(r'(^|\.)(lora_(A|B|embedding_A|embedding_B|magnitude_vector)|modules_to_save'
                              r'|adapters)\.')


def get_submodule(model: nn.Module, name: str) -> nn.Module:
    """``model.get_submodule(name)`` with an error that lists the top-level children ('' = the model)."""
    if not name:
        return model
    try:
        return model.get_submodule(name)
    except AttributeError as err:
        children = [n for n, _ in model.named_children()]
        raise ValueError(f"module '{name}' not found in {type(model).__name__} "
                         f'(top-level children: {children})') from err


def name_matches(name: str, targets: str | Sequence[str]) -> bool:
    """Whether a module name is selected by ``targets`` (regex full match, or exact / dotted-suffix names)."""
    if isinstance(targets, str):
        return re.fullmatch(targets, name) is not None
    return any(name == t or name.endswith('.' + t) for t in targets)


def match_module_names(scope: nn.Module, targets: str | Sequence[str], what: str = 'targets',
                       exclude: Iterable[str] = ()) -> list[str]:
    """Names (relative to ``scope``) of the modules selected by ``targets``, in module order.

    ``exclude`` lists name prefixes never selected (e.g. modules another wrapper created).
    """
    if not isinstance(targets, str):
        targets = list(targets)
        if not targets:
            raise ValueError(f'{what} is empty')
    exclude = tuple(exclude)
    names = [n for n, _ in scope.named_modules() if n and name_matches(n, targets)
             and not any(n == e or n.startswith(e + '.') for e in exclude)]
    if not names:
        raise ValueError(f'{what}={targets!r} selects no module of {type(scope).__name__} '
                         f'(a string must match a whole module name; a list names modules or dotted suffixes)')
    return names


def match_param_names(named: Iterable[str], patterns: str | Sequence[str], what: str) -> set[str]:
    """Parameter names in which any of ``patterns`` is found (``re.search``); each pattern must hit one."""
    patterns = [patterns] if isinstance(patterns, str) else list(patterns)
    named = list(named)
    selected: set[str] = set()
    for pattern in patterns:
        try:
            regex = re.compile(pattern)
        except re.error as err:
            raise ValueError(f'{what}: {pattern!r} is not a valid regular expression ({err})') from err
        hits = {n for n in named if regex.search(n)}
        if not hits:
            raise ValueError(f'{what}: pattern {pattern!r} matches no parameter name')
        selected |= hits
    return selected


def _is_peft_module(module: nn.Module) -> bool:
    return type(module).__module__.startswith('peft.')


def peft_internal_prefixes(scope: nn.Module) -> list[str]:
    """Names of modules created by peft inside ``scope``: their descendants are never wrapper targets."""
    return [n for n, m in scope.named_modules() if n and _is_peft_module(m)]


def wrapper_internal_names(scope: nn.Module) -> list[str]:
    """Modules no wrapper may target: inside peft's layers, and ``adapters`` containers with their content."""
    inside_peft = [c for n in peft_internal_prefixes(scope)
                   for c, _ in scope.get_submodule(n).named_modules(prefix=n) if c != n]
    return inside_peft + [n for n, _ in scope.named_modules() if n.split('.')[-1] == 'adapters']


def snapshot_wrapper_params(model: nn.Module) -> dict[str, bool]:
    """``requires_grad`` of parameters created by earlier wrappers (restored after peft's freezing)."""
    return {n: p.requires_grad for n, p in model.named_parameters() if WRAPPER_PARAM_RE.search(n)}


def restore_wrapper_params(model: nn.Module, states: Mapping[str, bool]) -> None:
    for n, p in model.named_parameters():
        if n in states:
            p.requires_grad_(states[n])
