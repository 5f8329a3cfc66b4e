"""Pipeline construction that works without a Runner (no ``default_scope`` set)."""
from __future__ import annotations

from collections.abc import Callable, Sequence

from ovseg.registry import TRANSFORMS


def build_pipeline(pipeline: Sequence[dict | Callable] | None) -> list[Callable]:
    """Build transform configs from ``ovseg.registry.TRANSFORMS`` (which falls back to mmengine's).

    mmengine's ``BaseDataset`` builds from the root registry and only finds ovseg transforms when a
    Runner has set ``default_scope='ovseg'``; building here lets datasets be used directly in tests,
    notebooks and converters too.
    """
    return [TRANSFORMS.build(t) if isinstance(t, dict) else t for t in (pipeline or [])]
