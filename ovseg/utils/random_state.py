"""Every random stream a training process draws from, captured, restored and isolated as one unit.

Why: an exact ``--resume`` needs the model's random draws (point sampling in the matcher and losses, dropout)
to continue from where the interrupted run was, and code that must not perturb training (validation, a
rebuilt dataloader iterator, a sample's augmentation) must leave the streams as it found them. The streams:
Python ``random``, NumPy's global ``np.random``, torch's CPU generator and, when CUDA is initialised, every
CUDA device's generator. The captured form holds only tensors, ints, floats and strings, so checkpoints that
carry it stay loadable with ``torch.load(weights_only=True)``.
"""
from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

__all__ = ['capture_random_state', 'restore_random_state', 'preserved_random_state', 'seeded_random_state',
           'gather_random_states', 'derive_sample_seeds']


def capture_random_state() -> dict[str, Any]:
    """The state of every stream of this process (weights-only loadable)."""
    py_version, py_state, py_gauss = random.getstate()
    np_name, np_keys, np_pos, np_has_gauss, np_gauss = np.random.get_state(legacy=True)
    state: dict[str, Any] = {
        'python': {'version': py_version, 'state': torch.tensor(py_state, dtype=torch.int64), 'gauss': py_gauss},
        'numpy': {'name': np_name, 'keys': torch.from_numpy(np_keys.astype(np.int64)), 'pos': int(np_pos),
                  'has_gauss': int(np_has_gauss), 'cached_gaussian': float(np_gauss)},
        'torch': torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state['cuda'] = torch.cuda.get_rng_state_all()
    return state


def restore_random_state(state: dict[str, Any]) -> None:
    """Inverse of :func:`capture_random_state`; a missing ``cuda`` entry leaves the CUDA generators alone."""
    py = state['python']
    random.setstate((py['version'], tuple(int(v) for v in py['state'].cpu().tolist()), py['gauss']))
    npst = state['numpy']
    np.random.set_state((npst['name'], npst['keys'].cpu().numpy().astype(np.uint32), npst['pos'], npst['has_gauss'],
                         npst['cached_gaussian']))
    torch.set_rng_state(state['torch'].cpu())  # a checkpoint loaded with map_location='cuda' moved it
    if 'cuda' in state and torch.cuda.is_available():
        cuda_states = [s.cpu() for s in state['cuda']]
        if len(cuda_states) != torch.cuda.device_count():
            raise ValueError(f'the saved random state covers {len(cuda_states)} CUDA devices, this process sees '
                             f'{torch.cuda.device_count()}')
        torch.cuda.set_rng_state_all(cuda_states)


@contextmanager
def preserved_random_state() -> Iterator[None]:
    """Run a block without changing any random stream of this process (validation, iterator rebuilds)."""
    state = capture_random_state()
    try:
        yield
    finally:
        restore_random_state(state)


@contextmanager
def seeded_random_state(seeds: tuple[int, int, int]) -> Iterator[None]:
    """Seed Python, NumPy and torch-CPU with ``seeds`` for a block, then put the previous states back.

    CUDA generators are not touched (data pipelines run on the CPU, often in worker processes).
    """
    py_state, np_state, torch_state = random.getstate(), np.random.get_state(), torch.get_rng_state()
    random.seed(seeds[0])
    np.random.seed(seeds[1] & 0xFFFFFFFF)
    torch.default_generator.manual_seed(seeds[2])
    try:
        yield
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)
        torch.set_rng_state(torch_state)


def derive_sample_seeds(base_seed: int, position: int) -> tuple[int, int, int]:
    """Seeds (Python, NumPy, torch) of the sample at global stream ``position`` of a run seeded ``base_seed``.

    A function of the two numbers only: the same sample position gets the same augmentation whatever the
    number of dataloader workers, whichever worker decodes it, and whether the run was resumed.
    """
    words = np.random.SeedSequence([int(base_seed) % (1 << 63), int(position)]).generate_state(4, np.uint32)
    return int(words[0]), int(words[1]), (int(words[2]) << 32) | int(words[3])


def gather_random_states() -> list[dict[str, Any]]:
    """Every rank's :func:`capture_random_state`, in rank order (a collective: call it on all ranks)."""
    state = capture_random_state()
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return [state]
    states: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(states, _to_cpu(state))
    return states


def _to_cpu(state: dict[str, Any]) -> dict[str, Any]:
    out = dict(state)
    if 'cuda' in out:
        out['cuda'] = [s.cpu() for s in out['cuda']]
    return out
