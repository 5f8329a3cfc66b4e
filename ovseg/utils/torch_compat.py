"""Make mmengine 0.10.7 checkpoints load under torch >= 2.6 without turning off safe loading.

torch 2.6 switched ``torch.load`` to ``weights_only=True``. mmengine 0.10.7 calls ``torch.load`` without
the argument, and its checkpoints hold a few non-tensor objects (the MessageHub's ``HistoryBuffer`` with
numpy arrays, numpy scalars in runtime info). Rather than ``weights_only=False`` (which would execute any
pickled code in a downloaded file) we allow-list exactly those types, so ``--resume`` and ``load_from``
work and an untrusted file still cannot run code.
"""
from __future__ import annotations

import collections
import pickle

import numpy as np
import torch
from mmengine.config.config import ConfigDict
from mmengine.logging.history_buffer import HistoryBuffer

from .checkpoint_io import install_weights_only_loaders

try:  # numpy >= 2
    from numpy._core.multiarray import _reconstruct, scalar
except ImportError:  # pragma: no cover - numpy 1.x
    from numpy.core.multiarray import _reconstruct, scalar


def numpy_safe_globals() -> list:
    """numpy reconstructors and dtypes that appear when arrays/scalars are pickled."""
    items: list = [np.ndarray, np.dtype, _reconstruct, scalar]
    # dtype classes (np.dtypes.Float64DType, ...) are pickled by class in numpy >= 1.25
    dtypes_mod = getattr(np, 'dtypes', None)
    if dtypes_mod is not None:
        items += [getattr(dtypes_mod, name) for name in dir(dtypes_mod) if name.endswith('DType')]
    return items


def _history_buffer_getattr(obj: object, name: str):
    """Stand-in for ``getattr`` during weights-only loading, limited to HistoryBuffer statistics.

    A pickled ``HistoryBuffer`` stores its statistics as bound methods, which pickle writes as
    ``getattr(HistoryBuffer, 'mean')``. Allowing the real ``getattr`` would let a crafted file reach
    arbitrary attributes; this version only returns public methods of the ``HistoryBuffer`` class.
    """
    is_buffer = obj is HistoryBuffer or isinstance(obj, HistoryBuffer)
    if not is_buffer or name.startswith('_') or not callable(getattr(obj, name, None)):
        raise pickle.UnpicklingError(f'refusing getattr({type(obj).__name__}, {name!r}) in a checkpoint')
    return getattr(obj, name)


def mmengine_safe_globals() -> list:
    """Every non-tensor type an mmengine Runner checkpoint contains."""
    return ([HistoryBuffer, ConfigDict, collections.Counter, collections.OrderedDict,
             (_history_buffer_getattr, '__builtin__.getattr'), (_history_buffer_getattr, 'builtins.getattr')]
            + numpy_safe_globals())


def allow_mmengine_checkpoints() -> None:
    """Register mmengine's checkpoint types with torch's weights-only unpickler, and make every mmengine
    checkpoint loader pass ``weights_only=True`` explicitly (idempotent).

    The second part matters because torch's default can be switched off from the environment
    (``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1``) and mmengine does not pass the argument.
    """
    add = getattr(torch.serialization, 'add_safe_globals', None)
    if add is not None:  # torch < 2.4 has no allow-list (and no weights-only default)
        add(mmengine_safe_globals())
    install_weights_only_loaders()
