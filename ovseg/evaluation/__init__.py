"""Evaluation: pure metric computations (``functional``, numpy + OpenCV) and mmengine metrics (``metrics``).

The mmengine metrics are imported on first access (``from ovseg.evaluation import PanopticMetric``) so the
evaluation command-line tools, which only need ``functional``, do not pay for torch and mmengine. The
``METRICS`` registry lists ``ovseg.evaluation.metrics`` as its location, so configs still find them.
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from . import functional  # noqa: F401

if TYPE_CHECKING:
    from .metrics import (
        CityscapesInstanceAPMetric,
        CocoInstanceAPMetric,
        InstanceMaskAPMetric,
        PanopticMetric,
        ReferringSegMetric,
        SemSegMetric,
    )

__all__ = ['PanopticMetric', 'SemSegMetric', 'InstanceMaskAPMetric', 'CocoInstanceAPMetric',
           'CityscapesInstanceAPMetric',
           'ReferringSegMetric']


def __getattr__(name: str) -> Any:
    if name in __all__ or name == 'metrics':
        metrics = importlib.import_module(f'{__name__}.metrics')  # mmengine + torch: on first use only
        return metrics if name == 'metrics' else getattr(metrics, name)
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
