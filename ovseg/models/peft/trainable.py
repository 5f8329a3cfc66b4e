"""Which parameters train: the ``trainable_params`` declaration and the start-up table that reports it.

Config (top level)::

    trainable_params = dict(train=[r'\\.adapters\\.', r'^sem_seg_head\\.predictor\\.class_embed\\.'],
                            freeze=[r'\\.norm\\.'])

``train``: exactly the matching parameters train, every other one is frozen. ``freeze``: the matching ones are
frozen, the others keep their ``requires_grad``. With both, ``train`` is applied first and ``freeze`` then
removes from it. Patterns are regular expressions searched in the parameter name; each must match at least
one parameter.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from torch import Tensor, nn

from .matching import match_param_names


def apply_trainable_params(model: nn.Module, train: str | Sequence[str] | None = None,
                           freeze: str | Sequence[str] | None = None) -> set[str]:
    """Set ``requires_grad`` as declared; returns the names of the parameters that train afterwards."""
    named = dict(model.named_parameters())
    if train is not None:
        selected = match_param_names(named, train, 'trainable_params.train')
        not_float = sorted(n for n in selected if not named[n].is_floating_point())
        if not_float:
            raise ValueError(f'trainable_params.train selects non-float parameters that cannot train: {not_float}')
        for name, p in named.items():
            p.requires_grad_(name in selected)
    if freeze is not None:
        for name in match_param_names(named, freeze, 'trainable_params.freeze'):
            named[name].requires_grad_(False)
    return {n for n, p in named.items() if p.requires_grad}


def check_trainable_params_cfg(cfg: Mapping | None) -> dict:
    """The ``trainable_params`` config as keyword arguments, with unknown keys refused."""
    if cfg is None:
        return {}
    if not isinstance(cfg, Mapping):
        raise TypeError(f'trainable_params must be a dict(train=[...], freeze=[...]), got {type(cfg).__name__}')
    unknown = sorted(set(cfg) - {'train', 'freeze'})
    if unknown:
        raise ValueError(f"trainable_params: unknown keys {unknown}; use 'train' and/or 'freeze'")
    return dict(cfg)


@dataclass(frozen=True)
class ParamRow:
    """One row of the trainable-parameter table: a module (depth 1 or 2) and its parameter counts."""

    name: str
    depth: int
    trainable: int
    total: int


def parameter_table(model: nn.Module, depth: int = 2) -> tuple[list[ParamRow], int, int]:
    """Rows for the model's children down to ``depth`` (in module order), and (trainable, total) of the model.

    Parameters shared between modules are counted once, at their first name. Parameters held directly by
    the model appear as a row named ``(own)``.
    """
    counts: dict[str, list[int]] = {}
    order: list[str] = []
    trainable_all = total_all = 0
    for name, p in model.named_parameters():
        n, t = p.numel(), p.numel() if p.requires_grad else 0
        trainable_all += t
        total_all += n
        parts = name.split('.')[:-1]
        keys = ['.'.join(parts[:d]) for d in range(1, min(depth, len(parts)) + 1)] or ['(own)']
        for key in keys:
            if key not in counts:
                counts[key] = [0, 0]
                order.append(key)
            counts[key][0] += t
            counts[key][1] += n
    rows = [ParamRow(k, 1 if k == '(own)' else k.count('.') + 1, *counts[k]) for k in order]
    # children right under their parent, the model's own parameters last
    rows.sort(key=lambda r: (r.name == '(own)', order.index(r.name.split('.')[0])))
    return rows, trainable_all, total_all


def _pct(part: int, whole: int) -> float:
    return 100.0 * part / whole if whole else 0.0


def format_parameter_table(model: nn.Module, depth: int = 2) -> str:
    """The table logged at start-up: trainable / total per module, % of the module and % of all parameters."""
    rows, trainable, total = parameter_table(model, depth)
    width = max([len('module')] + [len(r.name) + 2 * (r.depth - 1) for r in rows])
    lines = [f'Trainable parameters: {trainable:,} of {total:,} ({_pct(trainable, total):.2f} %)',
             f"{'module':<{width}}  {'trainable':>14}  {'total':>14}  {'% module':>8}  {'% all':>7}"]
    for r in rows:
        label = '  ' * (r.depth - 1) + r.name
        lines.append(f'{label:<{width}}  {r.trainable:>14,}  {r.total:>14,}  {_pct(r.trainable, r.total):>8.2f}'
                     f'  {_pct(r.trainable, total):>7.2f}')
    return '\n'.join(lines)


def trainable_state_dict(model: nn.Module) -> dict[str, Tensor]:
    """Only the parameters that require grad (what a fine-tune adds to a frozen base), detached."""
    return {n: p.detach() for n, p in model.named_parameters() if p.requires_grad}
