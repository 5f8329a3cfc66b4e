"""Load one segmentor's weights from its own checkpoint (a teacher, the two models of a fusion, the zero-shot
model of the naive merge).

Why a dedicated loader: the study's public code loaded the student's weights into its teacher by mistake, because
both came through one ``MODEL.WEIGHTS``. Here every sub-model names its own file, the load is strict (a checkpoint
of another backbone fails with the file name and the first mismatching keys instead of leaving a half-random
model), and the module is marked initialised so that the runner's ``init_weights()`` before training cannot
overwrite the loaded weights.

Accepted files: an ovseg/mmengine checkpoint (``state_dict``), a flat state dict, or a released detectron2 FC-CLIP
checkpoint (``model`` with official ``sem_seg_head.*`` names, converted by the FC-CLIP prefix map).
"""
from __future__ import annotations

import os
from typing import Any

from torch import Tensor, nn

from ovseg.engine.hooks.vocabulary_hook import train_vocabulary_of_checkpoint
from ovseg.models.utils.checkpoint_convert import (
    CLIP_TEXT_TOWER_PREFIXES,
    convert_fcclip_state_dict,
    extract_state_dict,
    safe_load_checkpoint,
)

#: Keys a checkpoint may lack: the CLIP text tower comes from the open_clip pretrained tag at construction
#: (released FC-CLIP files do not store it; see ``checkpoint_convert``).
OPTIONAL_PREFIXES: tuple[str, ...] = CLIP_TEXT_TOWER_PREFIXES


def _sample(keys: list[str], n: int = 5) -> str:
    return ', '.join(keys[:n]) + (f' (+{len(keys) - n} more)' if len(keys) > n else '')


def read_segmentor_state_dict(path: str | os.PathLike) -> tuple[dict[str, Tensor], dict[str, Any]]:
    """``(state_dict in ovseg names, checkpoint meta)``; official FC-CLIP files are converted on the fly."""
    ckpt = safe_load_checkpoint(os.fspath(path))
    if not isinstance(ckpt, dict):
        raise ValueError(f'{path}: expected a dict checkpoint, got {type(ckpt).__name__}')
    state_dict = extract_state_dict(ckpt)
    if not state_dict:
        raise ValueError(f'{path}: no tensors found (expected an ovseg checkpoint or a released FC-CLIP file)')
    if any(k.startswith('sem_seg_head.') for k in state_dict):
        state_dict, _ = convert_fcclip_state_dict(state_dict)
    meta = ckpt.get('meta') if isinstance(ckpt.get('meta'), dict) else {}
    return state_dict, meta


def load_segmentor_checkpoint(module: nn.Module, path: str | os.PathLike, role: str) -> dict[str, Any]:
    """Load ``path`` into ``module`` strictly (except :data:`OPTIONAL_PREFIXES`) and mark it initialised.

    Args:
        module: the segmentor (e.g. an ``FCCLIP``).
        path: its checkpoint.
        role: what the module is (``'teacher'``, ``'model_one'``...), named in errors.
    Returns:
        the checkpoint's ``meta`` (it carries the training vocabulary in ``dataset_meta``).
    Raises:
        ValueError naming the file, the role and the first missing / unexpected / mis-shaped keys — the usual
        cause is a checkpoint of another backbone (R50 vs ConvNeXt-L).
    """
    state_dict, meta = read_segmentor_state_dict(path)
    own = module.state_dict()
    missing = [k for k in own if k not in state_dict and not k.startswith(OPTIONAL_PREFIXES)]
    unexpected = [k for k in state_dict if k not in own]
    mismatched = [f'{k} {tuple(state_dict[k].shape)} vs {tuple(own[k].shape)}' for k in own
                  if k in state_dict and tuple(state_dict[k].shape) != tuple(own[k].shape)]
    problems = []
    if mismatched:
        problems.append(f'{len(mismatched)} shape mismatch(es) (checkpoint vs model): {_sample(mismatched, 3)}')
    if missing:
        problems.append(f'{len(missing)} missing key(s): {_sample(missing)}')
    if unexpected:
        problems.append(f'{len(unexpected)} unexpected key(s): {_sample(unexpected)}')
    if problems:
        raise ValueError(f'{path}: does not fit the {role} ({type(module).__name__}): ' + '; '.join(problems)
                         + ' — a checkpoint of another backbone or model?')
    module.load_state_dict({k: v for k, v in state_dict.items() if k in own}, strict=False)
    module._is_init = True  # mmengine's init_weights() skips initialised children: the weights stay loaded
    return meta


def checkpoint_train_vocabulary(meta: dict[str, Any]) -> tuple[list, list | None] | None:
    """``(class_synonyms, is_thing)`` a checkpoint was trained on, or ``None``."""
    return train_vocabulary_of_checkpoint(dict(meta=meta))
