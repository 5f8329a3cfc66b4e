"""Atomic file output: every file the NSS pipeline writes appears complete or not at all.

Each writer writes to a hidden temporary file in the destination folder, flushes and fsyncs it, then
``os.replace``-s it onto the final name (atomic on POSIX within one file system). A crash therefore leaves
at most a ``.<name>.tmp-*`` file, which readers ignore and :func:`clean_temp_files` removes. Text and JSON
pass through :func:`.redact.redact` first: no API key or bearer token reaches the disk.
"""
from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from ovseg.utils.atomic_io import atomic_write_bytes as _atomic_write_bytes

from .redact import redact, redact_obj

TMP_MARK = '.tmp-'


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    # One file among thousands: the folder is not fsynced per file (a lost rename only means a redo).
    return _atomic_write_bytes(path, data, temp_prefix=f'.{Path(path).name}{TMP_MARK}', sync_dir=False)


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write_bytes(path, redact(text).encode('utf-8'))


def dumps_json(obj: Any) -> str:
    """Deterministic JSON text (fixed key order as given, 2-space indent, trailing newline)."""
    return json.dumps(obj, indent=2, ensure_ascii=False) + '\n'


def atomic_write_json(path: str | os.PathLike, obj: Any) -> Path:
    return atomic_write_text(path, dumps_json(redact_obj(obj)))  # strings redacted before JSON escaping


def png_bytes(img: Image.Image | np.ndarray) -> bytes:
    """PNG-encode deterministically (no timestamps or text chunks are written by PIL)."""
    if isinstance(img, np.ndarray):
        if img.dtype == bool:
            img = img.astype(np.uint8) * 255
        img = Image.fromarray(img)
    buf = io.BytesIO()
    img.save(buf, format='PNG')
    return buf.getvalue()


def atomic_save_png(path: str | os.PathLike, img: Image.Image | np.ndarray) -> Path:
    return atomic_write_bytes(path, png_bytes(img))


def read_json(path: str | os.PathLike) -> Any:
    with open(path, encoding='utf-8') as f:
        return json.load(f)


def clean_temp_files(root: str | os.PathLike) -> int:
    """Remove temporary files left by an interrupted writer below ``root``; returns how many."""
    n = 0
    root = Path(root)
    if not root.exists():
        return 0
    for p in root.rglob(f'.*{TMP_MARK}*'):
        if p.is_file():
            p.unlink()
            n += 1
    return n
