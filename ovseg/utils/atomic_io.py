"""Atomic file output shared by checkpoints, work-dir files and the NSS pipeline (standard library only).

A writer fills a hidden temporary file in the destination folder, flushes and fsyncs it, then ``os.replace``-s
it onto the final name (atomic on POSIX within one file system): a crash leaves the previous file or the new
one, never a truncated file — only a hidden temporary that its owner's cleanup removes.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, TypeVar

T = TypeVar('T')

__all__ = ['atomic_write', 'atomic_write_bytes', 'build_dir_atomically', 'fsync_dir']


def fsync_dir(path: str | os.PathLike) -> None:
    """Persist a folder's entries (the rename itself); a no-op where folders cannot be opened."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def atomic_write(path: str | os.PathLike, write: Callable[[IO[bytes]], object], *, temp_prefix: str | None = None,
                 temp_suffix: str = '', sync_dir: bool = True) -> Path:
    """Write ``path`` through ``write(binary file)`` so that it appears complete or not at all.

    Args:
        temp_prefix: prefix of the temporary file (default ``.<name>.``); owners choose a recognisable one so
            their cleanup can find leftovers of a killed run.
        temp_suffix: suffix of the temporary file (checkpoints use ``.partial``).
        sync_dir: also fsync the folder so the rename survives a power loss (checkpoints); bulk writers that
            produce thousands of small files may skip it.
    """
    path = Path(path)
    folder = path.absolute().parent
    folder.mkdir(parents=True, exist_ok=True)
    prefix = f'.{path.name}.' if temp_prefix is None else temp_prefix
    fd, tmp = tempfile.mkstemp(prefix=prefix, suffix=temp_suffix, dir=folder)
    try:
        with os.fdopen(fd, 'wb') as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    if sync_dir:
        fsync_dir(folder)
    return path


def atomic_write_bytes(path: str | os.PathLike, data: bytes, **kwargs) -> Path:
    """:func:`atomic_write` of a bytes object."""
    return atomic_write(path, lambda f: f.write(data), **kwargs)


def build_dir_atomically(final: str | os.PathLike, build: Callable[[Path], T], *, replace: bool = False) -> T:
    """Fill a hidden temporary sibling of ``final`` with ``build(tmp)`` and rename it onto ``final``.

    A generated dataset (the ToyScenes family) then exists complete or not at all: a killed run leaves only a
    hidden ``.<name>.tmp-*`` folder, removed here on any error. ``final`` may exist only as an empty folder, or,
    with ``replace``, as an old copy that is deleted just before the rename. Callers hold a file lock so that
    concurrent ranks do not build it twice. Returns what ``build`` returns.
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f'.{final.name}.tmp-', dir=final.parent))
    try:
        result = build(tmp)
        os.chmod(tmp, 0o755)  # mkdtemp creates 0700; the data should be as readable as a mkdir'ed folder
        if final.exists():
            if replace:
                shutil.rmtree(final)
            else:
                final.rmdir()
        os.rename(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return result
