"""One run per work dir: an exclusive ``flock`` on ``<work_dir>/.ovseg_run.lock``.

Two runs on the same work dir otherwise mix silently: one run's config dump, the other's checkpoints and
``last_checkpoint``, interleaved logs. The lock is an OS file lock, so it disappears with its process (a
killed run never leaves a stale lock behind); the file keeps the holder's pid, host and command for the
message the second run prints.
"""
from __future__ import annotations

import fcntl
import json
import os
import os.path as osp
import socket
import sys
import time

__all__ = ['WorkDirLock', 'WorkDirBusyError', 'LOCK_NAME']

LOCK_NAME = '.ovseg_run.lock'


class WorkDirBusyError(RuntimeError):
    """Another live process holds the work dir."""


class WorkDirLock:
    """Exclusive, non-blocking lock of a work dir for the lifetime of a run (re-entrant per object)."""

    def __init__(self, work_dir: str) -> None:
        self.work_dir = work_dir
        self.path = osp.join(work_dir, LOCK_NAME)
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> None:
        if self._fd is not None:
            return
        os.makedirs(self.work_dir, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = self._holder(fd)
            os.close(fd)
            raise WorkDirBusyError(f'work dir {self.work_dir} is in use by another run ({holder}); wait for it to '
                                   'finish or pass another --work-dir') from None
        info = dict(pid=os.getpid(), host=socket.gethostname(), started=time.strftime('%Y-%m-%d %H:%M:%S'),
                    command=' '.join(sys.argv))
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(info).encode(), 0)
        self._fd = fd

    @staticmethod
    def _holder(fd: int) -> str:
        try:
            info = json.loads(os.pread(fd, 4096, 0).decode() or '{}')
        except (OSError, ValueError):
            info = {}
        if not info:
            return 'holder unknown'
        return f"pid {info.get('pid')} on {info.get('host')}, started {info.get('started')}: {info.get('command')}"

    def release(self) -> None:
        if self._fd is None:
            return
        try:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            os.close(self._fd)
            self._fd = None

    def __del__(self) -> None:  # a runner dropped without finishing still frees its work dir
        self.release()
