"""Small helpers shared by the metrics: reading data-sample dicts and ``dataset_meta`` with clear errors."""
from __future__ import annotations

import os.path as osp
from collections.abc import Mapping
from typing import Any

import numpy as np


def to_numpy(x: Any) -> np.ndarray:
    """Tensor or array-like -> numpy array (no copy for CPU tensors)."""
    if hasattr(x, 'detach'):
        x = x.detach().cpu().numpy()
    return np.asarray(x)


def get_field(ds: Mapping[str, Any], key: str, image_id: Any) -> Any:
    """``ds[key]['data']`` (PixelData as dict) or ``ds[key]`` when it is already a tensor/array."""
    if key not in ds:
        raise KeyError(f'image {image_id!r}: data sample has no "{key}" (keys: {sorted(ds)})')
    value = ds[key]
    if isinstance(value, Mapping):
        if 'data' not in value:
            raise KeyError(f'image {image_id!r}: "{key}" has no "data" field (keys: {sorted(value)})')
        return value['data']
    if hasattr(value, 'data') and not hasattr(value, 'shape'):
        return value.data
    return value


def meta_classes(meta: Mapping[str, Any] | None, who: str) -> tuple[list[str], list[bool]]:
    """``classes`` and ``is_thing`` from ``dataset_meta`` (``is_thing`` defaults to all stuff)."""
    if not meta or 'classes' not in meta:
        raise ValueError(
            f'{who} needs dataset_meta with "classes" (set by the Runner from the dataset metainfo)')
    classes = [str(c) for c in meta['classes']]
    is_thing = meta.get('is_thing')
    if is_thing is None:
        things = set(meta.get('thing_classes') or [])
        is_thing = [c in things for c in classes]
    is_thing = [bool(t) for t in is_thing]
    if len(is_thing) != len(classes):
        raise ValueError(f'{who}: dataset_meta has {len(classes)} classes but {len(is_thing)} is_thing flags')
    return classes, is_thing


def sample_name(ds: Mapping[str, Any], image_id: Any) -> str:
    """File stem for a sample's written prediction: the image file's stem, else the image id."""
    path = ds.get('img_path')
    if path:
        return osp.splitext(osp.basename(str(path)))[0]
    return str(image_id)


def read_pred_instances(ds: Mapping[str, Any], image_id: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``pred_instances`` as numpy (bool masks K×H×W, int64 labels K, float64 scores K), shapes checked."""
    if 'pred_instances' not in ds:
        raise KeyError(f'image {image_id!r}: data sample has no "pred_instances" (model test_cfg '
                       'instance_on=False?)')
    inst = ds['pred_instances']
    masks = to_numpy(inst['masks']).astype(bool, copy=False)
    labels = to_numpy(inst['labels']).astype(np.int64).reshape(-1)
    scores = to_numpy(inst['scores']).astype(np.float64).reshape(-1)
    if masks.ndim != 3 or not (len(masks) == len(labels) == len(scores)):
        raise ValueError(f'image {image_id!r}: pred_instances need masks K×H×W, labels K, scores K; got '
                         f'{masks.shape}, {labels.shape}, {scores.shape}')
    return masks, labels, scores
