"""Reading a JSON file with errors that name the file: missing, not JSON, or not the expected top-level type."""
from __future__ import annotations

import json
import os
from typing import Any


def read_json(path: str | os.PathLike, what: str = 'JSON file', expect: type | None = None,
              error: type[Exception] = ValueError) -> Any:
    """``json.load`` of ``path``.

    Raises ``FileNotFoundError`` naming ``what`` and the path, and ``error`` (a ``ValueError`` subclass of the
    caller's, e.g. a format error) for invalid JSON (with line and column) or a top level that is not ``expect``.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f'{path}: no such file ({what})')
    try:
        with open(path, encoding='utf-8') as f:
            data = json.load(f)
    except json.JSONDecodeError as e:
        raise error(f'{path}: not valid JSON ({e.msg} at line {e.lineno} column {e.colno}; {what})') from None
    if expect is not None and not isinstance(data, expect):
        raise error(f'{path}: expected a JSON {expect.__name__} at the top level ({what}), got {type(data).__name__}')
    return data
