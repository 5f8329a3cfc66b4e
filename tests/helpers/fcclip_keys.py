"""Official FC-CLIP state-dict entries (name, shape, dtype), read off the official code with random weights.

The lists live in tests/data/fcclip_keys/ (copied from the project's reference notes) so tests need
nothing outside the repository.
"""
from __future__ import annotations

from pathlib import Path

KEYS_DIR = Path(__file__).resolve().parents[1] / 'data' / 'fcclip_keys'


def keys_file(name: str) -> Path:
    """Path of ``fcclip_convnext_large_keys.txt`` / ``fcclip_r50_keys.txt`` (name with or without suffix)."""
    if not name.endswith('.txt'):
        name = f'fcclip_{name}_keys.txt'
    return KEYS_DIR / name


def official_entries(name: str, prefix: str = '', strip: bool = True) -> dict[str, tuple[tuple[int, ...], str]]:
    """``{key: (shape, dtype)}`` for entries starting with ``prefix`` (stripped when ``strip``)."""
    out = {}
    for line in keys_file(name).read_text().splitlines():
        if not line or line.startswith('#'):
            continue
        key, shape, dtype = line.split('\t')
        if key.startswith(prefix):
            dims = tuple(int(s) for s in shape.strip('()').split(',') if s.strip())
            out[key[len(prefix):] if strip else key] = (dims, dtype)
    return out
