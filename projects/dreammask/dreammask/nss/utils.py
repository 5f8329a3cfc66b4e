"""Small helpers: per-item seeds, scene ids, progress bars, stage summaries."""
from __future__ import annotations

import hashlib
from collections import Counter


def derive_seed(seed: int, *keys) -> int:
    """A stable 31-bit seed for (global seed, stage, item...): identical across runs and resumes."""
    h = hashlib.sha256(repr((int(seed), ) + tuple(keys)).encode()).digest()
    return int.from_bytes(h[:4], 'little') & 0x7FFFFFFF


def scene_id(i: int) -> str:
    return f'scene_{i:05d}'


def real_name(i: int) -> str:
    return f'real_{i:05d}.png'


def progress(iterable, total=None, desc='', enable=True):
    if not enable:
        return iterable
    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover
        return iterable
    return tqdm(iterable, total=total, desc=desc, dynamic_ncols=True, leave=False)


class StageSummary:
    """Counts for one stage: generated (items attempted), kept, rejected by reason (a final decision about
    the content), failed by reason (an error such as an LLM outage: retried on the next run), skipped
    (finished in an earlier run)."""

    def __init__(self, stage: str):
        self.stage = stage
        self.generated = 0
        self.kept = 0
        self.skipped = 0
        self.rejected: Counter = Counter()
        self.failed: Counter = Counter()
        self.extra: dict = {}

    def reject(self, reason: str, n: int = 1):
        self.rejected[reason] += n

    def fail(self, reason: str, n: int = 1):
        self.failed[reason] += n

    def to_dict(self) -> dict:
        return {
            'stage': self.stage,
            'generated': self.generated,
            'kept': self.kept,
            'rejected': dict(sorted(self.rejected.items())),
            'rejected_total': sum(self.rejected.values()),
            'failed': dict(sorted(self.failed.items())),
            'failed_total': sum(self.failed.values()),
            'skipped_already_done': self.skipped,
            **self.extra
        }

    def line(self) -> str:
        rej = ', '.join(f'{k}={v}' for k, v in sorted(self.rejected.items())) or 'none'
        line = (f'[{self.stage}] generated={self.generated} kept={self.kept} '
                f'rejected={sum(self.rejected.values())} ({rej}) skipped(already done)={self.skipped}')
        if self.failed:
            failed = ', '.join(f'{k}={v}' for k, v in sorted(self.failed.items()))
            line += f' failed={sum(self.failed.values())} ({failed}; retried on the next run)'
        return line
