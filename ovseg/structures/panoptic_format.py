"""The panoptic format (panopticapi / COCO panoptic): segment ids stored as RGB PNGs, and its constants.

A segment id ``i`` (``0 <= i < 2**24``) is stored as the colour ``(R, G, B) = (i % 256, i // 256 % 256,
i // 256**2)``, i.e. ``i = R + 256·G + 256²·B`` (panopticapi ``utils.rgb2id`` / ``id2rgb``). Id 0 is VOID.

dtype contract (one for the whole toolkit):

* ids decoded from colours or files (:func:`rgb2id`, :func:`read_panoptic_png`) are **uint32**: every
  24-bit id fits, it is 4 bytes per pixel, and it is the layout the fast decode produces without any
  arithmetic. Consumers that hand ids to torch (the dataset pipeline's ``gt_pan_id``, a LongTensor) cast to
  int64 once, themselves.
* :func:`id2rgb` / :func:`write_panoptic_png` accept any integer array (or CPU tensor) of ids in
  ``[0, 2**24)`` and give uint8 RGB.

numpy + OpenCV only, so evaluation tools and converters import it without torch or mmengine.
"""
from __future__ import annotations

import os
import os.path as osp
import sys
from typing import Any

import cv2
import numpy as np

__all__ = ['VOID', 'IGNORE_INDEX', 'IGNORE_INDEX_16BIT', 'LABEL_DIVISOR', 'MAX_SEGMENT_ID', 'rgb2id', 'id2rgb',
           'read_panoptic_png', 'write_panoptic_png', 'default_ignore_index', 'check_ignore_index']

VOID = 0  # segment id of unlabelled pixels (panopticapi)
IGNORE_INDEX = 255  # semantic label of unlabelled pixels (detectron2 / mmseg)
IGNORE_INDEX_16BIT = 65535  # ... of 16-bit label maps whose classes include 255 (A-847, PC-459)
LABEL_DIVISOR = 1000  # panoptic label = category * LABEL_DIVISOR + instance (predictions, Cityscapes ids)
MAX_SEGMENT_ID = (1 << 24) - 1  # largest id an RGB colour can hold

_LITTLE = sys.byteorder == 'little'


def default_ignore_index(num_classes: int) -> int:
    """The label that means "not annotated" for a label map of ``num_classes`` classes.

    255 while the classes fit below it (8-bit PNGs); 65535 once 255 is itself a class, as in FC-CLIP's
    16-bit A-847 ("pier" = 255) and PC-459 ("monkey" = 255) TIFFs (``ignore_label=65535`` in
    register_ade20k_full.py / register_pascal_ctx_459_sem_seg.py).
    """
    return IGNORE_INDEX if num_classes <= IGNORE_INDEX else IGNORE_INDEX_16BIT


def check_ignore_index(ignore_index: int, num_classes: int, who: str) -> int:
    """``ignore_index`` must not be a class index, or that class would silently vanish from targets/metrics."""
    ignore_index = int(ignore_index)
    if 0 <= ignore_index < num_classes:
        raise ValueError(f'{who}: ignore_index {ignore_index} is one of the {num_classes} class indices '
                         f'(0..{num_classes - 1}); use a value >= {num_classes}, e.g. '
                         f'{default_ignore_index(num_classes)}')
    return ignore_index


def rgb2id(rgb: np.ndarray) -> np.ndarray:
    """H×W×3 RGB colours (H×W×4: alpha ignored, as panopticapi) → H×W uint32 ids ``R + 256·G + 256²·B``."""
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[2] not in (3, 4):
        raise ValueError(f'rgb2id expects an H×W×3 RGB array, got shape {rgb.shape}')
    if rgb.dtype != np.uint8:
        if not np.issubdtype(rgb.dtype, np.integer):
            raise ValueError(f'rgb2id expects integer colours, got dtype {rgb.dtype}')
        if rgb.size and (rgb.min() < 0 or rgb.max() > 255):
            raise ValueError(f'rgb2id expects colour channels in [0, 255], got [{rgb.min()}, {rgb.max()}]')
    c = rgb[..., :3].astype(np.uint32)
    return c[..., 0] | (c[..., 1] << 8) | (c[..., 2] << 16)


def _as_id_array(ids: Any) -> np.ndarray:
    if hasattr(ids, 'detach'):  # a torch tensor, without importing torch here
        ids = ids.detach().cpu().numpy()
    ids = np.asarray(ids)
    if ids.dtype == bool or not np.issubdtype(ids.dtype, np.integer):
        raise ValueError(f'panoptic segment ids must be integers, got dtype {ids.dtype}')
    if ids.size and (ids.min() < 0 or ids.max() > MAX_SEGMENT_ID):
        raise ValueError(f'panoptic segment ids must lie in [0, 2**24) to be stored as RGB, '
                         f'got [{ids.min()}, {ids.max()}]')
    return ids


def id2rgb(ids: Any) -> np.ndarray:
    """H×W integer ids in ``[0, 2**24)`` → H×W×3 uint8 RGB, the inverse of :func:`rgb2id`."""
    ids = _as_id_array(ids)
    if _LITTLE:  # the low three bytes of a little-endian uint32 are R, G, B
        return np.ascontiguousarray(ids.astype(np.uint32).view(np.uint8).reshape(ids.shape + (4, ))[..., :3])
    u = ids.astype(np.uint32)
    return np.stack([u & 255, (u >> 8) & 255, (u >> 16) & 255], axis=-1).astype(np.uint8)


def _png_header(path: str) -> str:
    """Bit depth and colour type from a PNG's IHDR, for error messages only."""
    try:
        with open(path, 'rb') as f:
            head = f.read(26)
    except OSError:
        return 'unreadable header'
    if len(head) < 26 or head[:8] != b'\x89PNG\r\n\x1a\n':
        return 'not a PNG'
    kinds = {0: 'grayscale', 2: 'RGB', 3: 'palette', 4: 'grayscale+alpha', 6: 'RGBA'}
    return f'{head[24]}-bit {kinds.get(head[25], f"colour type {head[25]}")}'


def read_panoptic_png(path: str | os.PathLike) -> np.ndarray:
    """Decode a panoptic PNG into H×W uint32 segment ids.

    8-bit RGB or RGBA (alpha ignored, like panopticapi; palette PNGs are expanded to their colours). A
    missing file is ``FileNotFoundError``; a grayscale or 16-bit PNG is a ``ValueError`` naming the file
    (a 16-bit map would silently wrap ids if read as 8-bit).
    """
    path = os.fspath(path)
    img = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    if img is None:
        if not osp.isfile(path):
            raise FileNotFoundError(f'panoptic PNG not found: {path}')
        raise ValueError(f'cannot decode panoptic PNG {path} ({_png_header(path)})')
    if img.dtype != np.uint8:
        depth = '16-bit' if img.dtype == np.uint16 else f'{img.dtype}'
        raise ValueError(f'panoptic PNG {path} is {depth} (shape {img.shape}); expected 8-bit RGB '
                         '(ids = R + 256*G + 256^2*B)')
    if img.ndim != 3 or img.shape[2] not in (3, 4):
        channels = 1 if img.ndim == 2 else img.shape[2]
        raise ValueError(f'panoptic PNG {path} has {channels} channel(s) ({_png_header(path)}); expected 8-bit '
                         'RGB (ids = R + 256*G + 256^2*B)')
    if not _LITTLE:
        return rgb2id(img[..., 2::-1])
    code = cv2.COLOR_BGR2RGBA if img.shape[2] == 3 else cv2.COLOR_BGRA2RGBA
    rgba = cv2.cvtColor(img, code)  # bytes R, G, B, A = little-endian uint32 R + G<<8 + B<<16 + A<<24
    ids = rgba.view(np.uint32).reshape(rgba.shape[:2])
    np.bitwise_and(ids, 0x00FFFFFF, out=ids)
    return ids


def write_panoptic_png(path: str | os.PathLike, ids: Any) -> None:
    """Write H×W (or 1×H×W) integer segment ids (array or CPU tensor) as an 8-bit RGB panoptic PNG."""
    path = os.fspath(path)
    ids = _as_id_array(ids)
    if ids.ndim == 3 and ids.shape[0] == 1:
        ids = ids[0]
    if ids.ndim != 2:
        raise ValueError(f'{path}: panoptic ids must be H×W, got shape {ids.shape}')
    bgr = np.ascontiguousarray(id2rgb(ids)[..., ::-1])
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    if not cv2.imwrite(path, bgr):
        raise OSError(f'could not write panoptic PNG {path}')
