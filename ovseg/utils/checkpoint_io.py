"""Reading and writing checkpoint files safely: weights-only loading with accurate errors, atomic writes.

Why one module: every path that opens a checkpoint (``--resume``, ``load_from``, ``init_cfg`` 'Pretrained',
tools/test.py, tools/image_demo.py, the converters) must pass ``weights_only=True`` *explicitly* — torch's default
can be switched off from the environment (``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1``), and a file that is not a
checkpoint at all (empty, text, random bytes, truncated) must say so instead of "contains pickled objects".
mmengine 0.10.7 calls ``torch.load`` without the argument, so :func:`install_weights_only_loaders` replaces
its ``CheckpointLoader`` schemes with loaders built on :func:`load_checkpoint_file`.
"""
from __future__ import annotations

import io
import os
import pickle
import zipfile
from typing import Any
from urllib.parse import urlparse

import torch
from mmengine.dist import get_dist_info
from mmengine.fileio import get_file_backend
from mmengine.runner.checkpoint import CheckpointLoader
from torch.hub import download_url_to_file, get_dir

from .atomic_io import atomic_write

__all__ = ['CheckpointFormatError', 'UnsafeCheckpointError', 'load_checkpoint_file', 'sniff_checkpoint',
           'atomic_torch_save', 'atomic_write_text', 'install_weights_only_loaders']

_ZIP_MAGIC = b'PK\x03\x04'
_PICKLE_PROTOCOL_BYTE = 0x80


class CheckpointFormatError(ValueError):
    """The file is not a readable checkpoint (empty, text, unknown bytes, truncated archive)."""


class UnsafeCheckpointError(CheckpointFormatError):
    """The file is a pickle that needs objects beyond tensors and allow-listed types; it is not executed."""


def sniff_checkpoint(path: str) -> str:
    """What a file looks like from its first bytes: 'zip' (torch >= 1.6), 'pickle' (legacy torch / detectron2
    .pkl), 'safetensors'; otherwise raises :class:`CheckpointFormatError` describing what it is instead."""
    size = os.path.getsize(path)
    if size == 0:
        raise CheckpointFormatError(f'{path} is empty (0 bytes): not a checkpoint (an interrupted download or save?)')
    with open(path, 'rb') as f:
        head = f.read(64)
    if head.startswith(_ZIP_MAGIC):
        return 'zip'
    if head[0] == _PICKLE_PROTOCOL_BYTE and len(head) > 1 and 2 <= head[1] <= 5:
        return 'pickle'
    if len(head) >= 9 and head[8:9] == b'{' and int.from_bytes(head[:8], 'little') < size:
        return 'safetensors'
    try:
        text = head.decode('utf-8')
    except UnicodeDecodeError:
        text = None
    if text is not None and all(c.isprintable() or c in '\r\n\t' for c in text):
        preview = text.strip().splitlines()[0][:40] if text.strip() else ''
        raise CheckpointFormatError(f'{path} is a text file ({size} bytes, starts with {preview!r}), not a '
                                    'checkpoint (an HTML error page or a git-lfs pointer instead of the weights?)')
    raise CheckpointFormatError(f'{path} is not a PyTorch checkpoint ({size} bytes starting with '
                                f'{head[:8].hex(" ")}; expected a torch.save zip archive, a pickle or safetensors)')


def load_checkpoint_file(path: str | os.PathLike, map_location: Any = 'cpu') -> Any:
    """``torch.load(path, weights_only=True)`` (or safetensors) with errors that say what went wrong.

    Raises ``FileNotFoundError`` (missing), :class:`CheckpointFormatError` (empty / text / unknown bytes /
    truncated) or :class:`UnsafeCheckpointError` (a pickle needing arbitrary objects: refused, never run).
    The types mmengine writes are allow-listed process-wide by ``import ovseg`` (``torch_compat``).
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f'checkpoint not found: {path}')
    kind = sniff_checkpoint(path)
    if kind == 'safetensors':
        from safetensors.torch import load_file  # optional dependency, only for .safetensors files
        device = map_location if isinstance(map_location, str) else 'cpu'
        return dict(load_file(path, device=device))
    if kind == 'zip' and not zipfile.is_zipfile(path):
        raise CheckpointFormatError(f'{path} is a truncated or corrupt checkpoint ({os.path.getsize(path)} bytes; '
                                    'the zip archive has no central directory): was the save interrupted?')
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if 'Weights only load failed' in str(exc) or 'Unsupported global' in str(exc):
            detail = next((ln.strip() for ln in str(exc).splitlines() if 'Unsupported global' in ln), first)
            raise UnsafeCheckpointError(
                f'Refusing to load {path}: it contains pickled objects beyond tensors and the allow-listed '
                f'mmengine/numpy types, and unpickling them could execute code ({detail}). If you trust the '
                'file, re-save only its tensors in an isolated environment and load that.') from exc
        raise CheckpointFormatError(f'{path} is a corrupt checkpoint ({first})') from exc
    except (EOFError, RuntimeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointFormatError(f'{path} is a truncated or corrupt checkpoint ({first})') from exc


def atomic_torch_save(obj: Any, path: str | os.PathLike) -> None:
    """``torch.save`` that leaves either the complete new file or the previous one, never a partial file."""
    atomic_write(path, lambda f: torch.save(obj, f), temp_suffix='.partial')


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write(path, lambda f: f.write(text.encode('utf-8')), temp_suffix='.partial')


# ------------------------------------------------------------------------ mmengine CheckpointLoader schemes
def load_from_local_weights_only(filename: str, map_location: Any = None) -> Any:
    return load_checkpoint_file(os.path.expanduser(filename), map_location=map_location)


def load_from_http_weights_only(filename: str, map_location: Any = None, model_dir: str | None = None,
                                progress: bool = False) -> Any:
    """mmengine's ``load_from_http`` semantics (download once into the torch hub cache), weights-only."""
    model_dir = model_dir or os.path.join(get_dir(), 'checkpoints')
    os.makedirs(model_dir, exist_ok=True)
    cached = os.path.join(model_dir, os.path.basename(urlparse(filename).path))
    rank, world_size = get_dist_info()
    if rank == 0 and not os.path.exists(cached):
        download_url_to_file(filename, cached, progress=progress)
    if world_size > 1:
        torch.distributed.barrier()
    return load_checkpoint_file(cached, map_location=map_location)


def load_from_ceph_weights_only(filename: str, map_location: Any = None) -> Any:
    """s3:// / petrel:// through mmengine's file backend, then weights-only from memory."""
    data = get_file_backend(filename, backend_args={'backend': 'petrel'}).get(filename)
    try:
        return torch.load(io.BytesIO(data), map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        raise UnsafeCheckpointError(f'Refusing to load {filename}: {str(exc).splitlines()[0]}') from exc


def load_from_refused_scheme(filename: str, map_location: Any = None) -> Any:
    raise CheckpointFormatError(
        f'{filename}: ovseg loads checkpoints weights-only and this mmengine URL scheme loads them without that '
        'protection; download the file and pass its local path (or its http(s) URL) instead')


def install_weights_only_loaders() -> None:
    """Route every mmengine ``CheckpointLoader`` scheme through weights-only loading (idempotent).

    mmengine's own loaders call ``torch.load`` without ``weights_only``; pavi/torchvision/open-mmlab/mmcls
    schemes (unused by ovseg configs) are refused with a message rather than left unprotected.
    """
    register = CheckpointLoader.register_scheme
    register(prefixes='', loader=load_from_local_weights_only, force=True)
    register(prefixes=('http://', 'https://'), loader=load_from_http_weights_only, force=True)
    register(prefixes=[r'(\S+\:)?s3://', r'(\S+\:)?petrel://'], loader=load_from_ceph_weights_only, force=True)
    register(
        prefixes=('pavi://', 'modelzoo://', 'torchvision://', 'open-mmlab://', 'openmmlab://', 'mmcls://'),
        loader=load_from_refused_scheme, force=True)
