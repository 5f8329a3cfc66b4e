"""The checkpoint files of a work dir: ``last_checkpoint``, which file ``--resume`` continues from, and
how a checkpoint's tensors fit a model.

mmengine reads ``last_checkpoint`` verbatim (an absolute path, or nothing: then it trains from scratch
without a word). ovseg writes it relative to the work dir (a copied work dir resumes from its own files) and
reads it strictly: a missing, empty or dangling ``last_checkpoint`` next to existing checkpoints is an error
that lists them, never a silent fresh start.
"""
from __future__ import annotations

import os
import os.path as osp
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from torch import Tensor, nn

from ovseg.utils.checkpoint_io import CheckpointFormatError, atomic_write_text, load_checkpoint_file

__all__ = ['LAST_CHECKPOINT', 'write_last_checkpoint', 'list_checkpoints', 'find_resume_checkpoint',
           'ResumeCheckpointError', 'StateDictMatch', 'match_state_dict', 'check_fit', 'load_model_weights']

LAST_CHECKPOINT = 'last_checkpoint'


class ResumeCheckpointError(FileNotFoundError):
    """``--resume`` cannot tell which checkpoint to continue from."""


def write_last_checkpoint(work_dir: str, checkpoint: str) -> None:
    """Point ``work_dir/last_checkpoint`` at ``checkpoint`` (atomically; relative when inside the work dir)."""
    if '://' not in checkpoint and osp.isabs(checkpoint):
        rel = osp.relpath(checkpoint, work_dir)
        if not rel.startswith(os.pardir):
            checkpoint = rel
    atomic_write_text(osp.join(work_dir, LAST_CHECKPOINT), checkpoint)


def _step(name: str) -> tuple[int, str]:
    m = re.search(r'(\d+)\.pth$', name)
    return (int(m.group(1)) if m else -1, name)


def list_checkpoints(work_dir: str) -> list[str]:
    """``*.pth`` files directly in ``work_dir``, by the step number in their name."""
    if not osp.isdir(work_dir):
        return []
    return sorted((f for f in os.listdir(work_dir) if f.endswith('.pth') and not f.startswith('.')), key=_step)


def find_resume_checkpoint(work_dir: str) -> str | None:
    """The checkpoint ``--resume`` (no path) continues from, or None when the work dir has none at all.

    Raises :class:`ResumeCheckpointError` (listing the checkpoints that exist) when ``last_checkpoint`` is
    missing, empty, unreadable or names a file that does not exist.
    """
    existing = list_checkpoints(work_dir)
    listing = f'checkpoints in {work_dir}: {existing}; pass one with --resume PATH' if existing else \
        f'{work_dir} holds no checkpoint (*.pth)'
    pointer = osp.join(work_dir, LAST_CHECKPOINT)
    if not osp.isfile(pointer):
        if existing:
            raise ResumeCheckpointError(f'--resume: {pointer} does not exist; {listing}')
        return None
    try:
        with open(pointer, encoding='utf-8') as f:
            target = f.read().strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise ResumeCheckpointError(f'--resume: cannot read {pointer} ({exc}); {listing}') from None
    if not target or '\n' in target or '\x00' in target:
        what = 'is empty' if not target else 'is corrupt (expected one checkpoint path)'
        raise ResumeCheckpointError(f'--resume: {pointer} {what}; {listing}')
    if '://' in target:
        return target
    path = target if osp.isabs(target) else osp.join(work_dir, target)
    if osp.isfile(path):
        return path
    local = osp.join(work_dir, osp.basename(target))
    if osp.isabs(target) and osp.isfile(local):  # a work dir copied from an older, absolute-path run
        return local
    raise ResumeCheckpointError(f'--resume: {pointer} names {target}, which does not exist; {listing}')


@dataclass
class StateDictMatch:
    """How a checkpoint's tensors fit a model: counts and the offending keys."""

    matched: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    shape_mismatch: list[tuple[str, tuple, tuple]] = field(default_factory=list)  # key, checkpoint, model
    meta: dict = field(default_factory=dict)  # the checkpoint's ``meta`` (e.g. the training ``dataset_meta``)

    def describe(self, limit: int = 5) -> str:
        parts = [f'{len(self.matched)} tensors match']
        if self.shape_mismatch:
            shown = ', '.join(f'{k}: checkpoint {tuple(a)} vs model {tuple(b)}' for k, a, b in
                              self.shape_mismatch[:limit])
            parts.append(f'{len(self.shape_mismatch)} differ in shape ({shown}'
                         f"{', ...' if len(self.shape_mismatch) > limit else ''})")
        for name, keys in (('missing from the checkpoint', self.missing), ('not in the model', self.unexpected)):
            if keys:
                parts.append(f"{len(keys)} {name} ({', '.join(keys[:limit])}{', ...' if len(keys) > limit else ''})")
        return '; '.join(parts)


def match_state_dict(model: nn.Module, state_dict: Mapping[str, Tensor]) -> StateDictMatch:
    """Compare ``state_dict`` (keys already revised to the model's names) with ``model.state_dict()``."""
    own = model.state_dict()
    result = StateDictMatch()
    for key, value in own.items():
        if key not in state_dict:
            if 'num_batches_tracked' not in key:
                result.missing.append(key)
            continue
        theirs = state_dict[key]
        if isinstance(theirs, Tensor) and tuple(theirs.shape) != tuple(value.shape):
            result.shape_mismatch.append((key, tuple(theirs.shape), tuple(value.shape)))
        else:
            result.matched.append(key)
    result.unexpected = [k for k in state_dict if k not in own]
    return result


def check_fit(filename: str, model: nn.Module, state_dict: Mapping[str, Tensor], exact: bool,
              warn: Callable[[str], None], frozen_omitted: bool = False) -> StateDictMatch:
    """Refuse a checkpoint that does not fit ``model`` before any weight is copied.

    ``exact`` (resuming): same parameters with the same shapes, or an error — the optimizer state would
    otherwise crash inside the optimizer or attach to the wrong tensors. Otherwise (``load_from``, test,
    demo): at least one tensor must match (else it is the wrong file), and a partial fit is ``warn``-ed
    with the offending keys (fine-tuning from another head size is legitimate). ``frozen_omitted`` (a
    ``TrainableCheckpointHook`` file): the model's frozen parameters may be absent — they come from the model's
    construction — but every trainable one must be there.
    """
    fit = match_state_dict(model, state_dict)
    if frozen_omitted:
        frozen = {name for name, p in model.named_parameters() if not p.requires_grad}
        fit.missing = [k for k in fit.missing if k not in frozen]
    if exact:
        params = {name for name, _ in model.named_parameters()}
        if fit.shape_mismatch or fit.unexpected or any(k in params for k in fit.missing):
            raise CheckpointFormatError(f'cannot resume from {filename}: it was written for another model '
                                        f'(another config?): {fit.describe()}')
        if fit.missing:
            warn(f'{filename} lacks buffers of this model: {fit.describe()}')
        return fit
    if not fit.matched:
        raise CheckpointFormatError(f'{filename} contains no tensor of this model ({fit.describe()}): wrong '
                                    'checkpoint for this config, or an unconverted checkpoint (see '
                                    'tools/model_converters/)?')
    if fit.shape_mismatch or fit.missing:
        warn(f'{filename} covers the model only partly: {fit.describe()}. The rest keeps its initialisation.')
    return fit


def load_model_weights(model: nn.Module, filename: str, warn: Callable[[str], None],
                       map_location: str = 'cpu') -> StateDictMatch:
    """Weights-only load of ``filename`` into ``model`` for tools without a runner (demo, analysis).

    Takes ``state_dict`` (mmengine) or ``model`` (detectron2) or a flat dict, strips a DDP ``module.``
    prefix, maps base names onto a LoRA-wrapped model's (``adapt_base_state_dict``), applies :func:`check_fit`
    (no match = error, partial = warning) and copies what fits.
    """
    ckpt = load_checkpoint_file(filename, map_location=map_location)
    if not isinstance(ckpt, Mapping):
        raise CheckpointFormatError(f'{filename}: expected a dict checkpoint, got {type(ckpt).__name__}')
    state_dict = ckpt
    for key in ('state_dict', 'model'):
        if isinstance(ckpt.get(key), Mapping):
            state_dict = ckpt[key]
            break
    state_dict = {re.sub(r'^module\.', '', k): v for k, v in state_dict.items()}
    from ovseg.models.peft import adapt_base_state_dict  # a base checkpoint into a LoRA-wrapped model
    state_dict, _ = adapt_base_state_dict(state_dict, model)
    fit = check_fit(filename, model, state_dict, exact=False, warn=warn)
    fit.meta = dict(ckpt.get('meta') or {}) if isinstance(ckpt.get('meta'), Mapping) else {}
    own = model.state_dict()
    model.load_state_dict({k: v for k, v in state_dict.items() if k in own and k not in
                           {key for key, _, _ in fit.shape_mismatch}}, strict=False)
    return fit
