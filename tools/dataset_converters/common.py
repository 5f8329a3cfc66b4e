"""Shared bits of the dataset converters: progress reporting, parallel map, input checks."""
from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from multiprocessing import Pool
from typing import Any, TypeVar

T = TypeVar('T')
R = TypeVar('R')


def progress(items: Iterable[T], total: int, desc: str) -> Iterator[T]:
    """Yield ``items`` while printing ``desc: done/total`` to stderr about every 5% (no tqdm dependency)."""
    start = time.perf_counter()
    step = max(1, total // 20)
    for i, item in enumerate(items, start=1):
        yield item
        if i % step == 0 or i == total:
            rate = i / max(time.perf_counter() - start, 1e-9)
            print(f'\r{desc}: {i}/{total} ({rate:.1f}/s)', end='\n' if i == total else '', file=sys.stderr,
                  flush=True)


def parallel_map(fn: Callable[[Any], R], args: Sequence[Any], workers: int, desc: str) -> list[R]:
    """``[fn(a) for a in args]`` over ``workers`` processes (1 = in-process, easier to debug)."""
    if workers <= 1 or len(args) < 2:
        return list(progress(map(fn, args), len(args), desc))
    with Pool(workers) as pool:
        return list(progress(pool.imap(fn, args, chunksize=8), len(args), desc))


def require_dir(path: str, what: str) -> str:
    if not os.path.isdir(path):
        raise SystemExit(f'error: {what} directory not found: {path}')
    return path


def require_file(path: str, what: str) -> str:
    if not os.path.isfile(path):
        raise SystemExit(f'error: {what} not found: {path}')
    return path
