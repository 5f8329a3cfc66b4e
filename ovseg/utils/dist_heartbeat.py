"""Which rank stopped responding when a collective times out.

A collective timeout only tells the waiting rank that *someone* did not arrive ("Timed out waiting 600000ms
for recv operation"). Each rank therefore bumps a counter in the rendezvous store from a daemon thread;
when a rank's collective fails, it reads the counters twice a few beats apart: a rank whose counter did not
move is stopped, frozen or dead (SIGSTOP, swapped out, killed), one whose counter moves is alive but stuck
elsewhere (a different collective, a long computation on its side). The store is the one ``env://``
rendezvous uses (``MASTER_ADDR:MASTER_PORT``: torchrun's agent, or rank 0's own store without torchrun).
"""
from __future__ import annotations

import os
import re
import threading
import time
from datetime import timedelta

import torch.distributed as dist

__all__ = ['start_heartbeat', 'unresponsive_ranks', 'describe_collective_failure', 'collective_timeout_s']

_KEY = 'ovseg_heartbeat/{rank}'
_state: dict = {}
_TIMEOUT_PATTERN = re.compile(r'timed? ?out|timeout|connection (closed|reset) by peer', re.IGNORECASE)


def _client_store() -> dist.Store | None:
    addr, port = os.environ.get('MASTER_ADDR'), os.environ.get('MASTER_PORT')
    if not addr or not port:
        return None
    try:
        return dist.TCPStore(addr, int(port), is_master=False, timeout=timedelta(seconds=10))
    except Exception:  # noqa: BLE001 - no heartbeat is better than a failed launch
        return None


def start_heartbeat(interval_s: float = 1.0, timeout_s: float | None = None) -> bool:
    """Start this rank's heartbeat thread (idempotent); False when there is no store to beat into."""
    if 'thread' in _state or not (dist.is_available() and dist.is_initialized()):
        if timeout_s is not None:
            _state['timeout'] = timeout_s
        return 'thread' in _state
    store = _client_store()
    if store is None:
        return False
    rank, world = dist.get_rank(), dist.get_world_size()
    key = _KEY.format(rank=rank)

    def beat() -> None:
        while True:
            try:
                store.add(key, 1)
            except Exception:  # noqa: BLE001 - the store went away (run over): stop beating
                return
            time.sleep(interval_s)

    thread = threading.Thread(target=beat, name='ovseg-heartbeat', daemon=True)
    _state.update(thread=thread, store=store, interval=interval_s, rank=rank, world=world, timeout=timeout_s)
    thread.start()
    return True


def collective_timeout_s() -> float | None:
    return _state.get('timeout')


def unresponsive_ranks() -> list[int] | None:
    """Ranks whose heartbeat did not advance over three beats (None when it cannot be told)."""
    store, world, me = _state.get('store'), _state.get('world'), _state.get('rank')
    if store is None:
        return None
    try:
        before = [store.add(_KEY.format(rank=r), 0) for r in range(world)]
        time.sleep(3 * _state['interval'] + 0.5)
        after = [store.add(_KEY.format(rank=r), 0) for r in range(world)]
    except Exception:  # noqa: BLE001 - the store lives in a stopped process: nothing to read
        return None
    return [r for r in range(world) if r != me and after[r] == before[r]]


def describe_collective_failure(exc: BaseException) -> str | None:
    """A message naming the unresponsive rank(s) when ``exc`` is a collective timeout, else None."""
    if not (dist.is_available() and dist.is_initialized()) or not isinstance(exc, RuntimeError):
        return None
    text = str(exc)
    if not _TIMEOUT_PATTERN.search(text):
        return None
    rank, world = dist.get_rank(), dist.get_world_size()
    limit = collective_timeout_s()
    waited = f' after {limit:g} s (env_cfg.dist_cfg.timeout)' if limit else ''
    stuck = unresponsive_ranks()
    if stuck:
        who = f'rank {stuck[0]}' if len(stuck) == 1 else f'ranks {stuck}'
        cause = f'{who} of {world} stopped responding (stopped, frozen or killed: its heartbeat does not advance)'
    elif stuck == []:
        cause = ('every other rank is alive but did not join this collective (stuck in another collective or '
                 'a long computation)')
    else:
        cause = 'the rank that did not join could not be identified (rendezvous store unreachable)'
    first = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
    return f'rank {rank}: a collective operation timed out{waited}: {cause}. Backend: {first}'
