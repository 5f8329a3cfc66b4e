"""Errors with actionable messages."""
from __future__ import annotations


class NSSError(RuntimeError):
    pass


class MissingModelError(NSSError, FileNotFoundError):
    """A model file / directory named in the config does not exist (raised at start-up)."""

    def __init__(self, what: str, path, how: str):
        self.path = str(path)
        super().__init__(f'{what} not found at {path!s}. {how}')


def require_path(path, what: str, how: str, is_dir: bool | None = None):
    from pathlib import Path
    p = Path(path) if path is not None else None
    if p is None or not p.exists() or (is_dir is True and not p.is_dir()) or (is_dir is False
                                                                              and not p.is_file()):
        raise MissingModelError(what, path, how)
    return p
