"""Convert released FC-CLIP (detectron2) checkpoints to ovseg state dicts by an explicit prefix map.

Why a prefix map: ovseg's modules keep the official inner parameter names (see ``docs/design.md``), so a
checkpoint converts by renaming top-level prefixes only — no reshaping, no guessing. The map:

=============================================  ==============================================
official                                       ovseg
=============================================  ==============================================
``backbone.clip_model.*``                      ``backbone.clip_model.*`` (kept)
``sem_seg_head.pixel_decoder.*``               ``pixel_decoder.*``
``sem_seg_head.predictor.class_embed.*``       ``transformer_decoder.class_head.class_embed.*``
``sem_seg_head.predictor._mask_pooling_proj.*``  ``transformer_decoder.class_head._mask_pooling_proj.*``
``sem_seg_head.predictor.logit_scale``         ``transformer_decoder.class_head.logit_scale``
``sem_seg_head.predictor.*`` (the rest)        ``transformer_decoder.*``
``void_embedding.weight``                      ``void_embedding.weight``
``criterion.empty_weight``                     dropped (recomputed from the vocabulary size)
=============================================  ==============================================

Loading never executes pickled code: ``.safetensors`` via safetensors, anything else via
``torch.load(weights_only=True)`` with only numpy's array reconstructors allow-listed (detectron2 model-zoo
files sometimes store numpy arrays). A file needing anything else is refused with an explanation.
"""
from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Mapping, MutableMapping
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ovseg.utils.checkpoint_io import (
    CheckpointFormatError,
    UnsafeCheckpointError,
    atomic_torch_save,
    load_checkpoint_file,
)
from ovseg.utils.torch_compat import numpy_safe_globals
from ovseg.vocabulary import load_category_meta, load_vocabulary

__all__ = ['PREFIX_RULES', 'DROPPED_KEYS', 'MODEL_EMBED_DIMS', 'safe_load_checkpoint', 'extract_state_dict',
           'convert_key', 'convert_fcclip_state_dict', 'ConversionReport', 'CLIP_TEXT_TOWER_PREFIXES',
           'UnsafeCheckpointError', 'CheckpointFormatError', 'REQUIRED_GROUPS']

#: (official prefix or exact key, ovseg prefix, group name, exact?) — first match wins, so the in-vocab head
#: rules precede the generic predictor rule.
PREFIX_RULES: tuple[tuple[str, str, str, bool], ...] = (
    ('sem_seg_head.predictor.class_embed.', 'transformer_decoder.class_head.class_embed.', 'class_head',
     False),
    ('sem_seg_head.predictor._mask_pooling_proj.', 'transformer_decoder.class_head._mask_pooling_proj.',
     'class_head', False),
    ('sem_seg_head.predictor.logit_scale', 'transformer_decoder.class_head.logit_scale', 'class_head', True),
    ('sem_seg_head.predictor.', 'transformer_decoder.', 'transformer_decoder', False),
    ('sem_seg_head.pixel_decoder.', 'pixel_decoder.', 'pixel_decoder', False),
    ('backbone.clip_model.', 'backbone.clip_model.', 'backbone', False),
    ('void_embedding.weight', 'void_embedding.weight', 'void_embedding', True),
)

#: Official keys deliberately not converted, with the reason.
DROPPED_KEYS: dict[str, str] = {
    'criterion.empty_weight': 'no-object class weight; recomputed from the vocabulary size by the criterion',
}

#: Inner names (after the ovseg prefix) the receiving modules define; anything else is "unknown".
_KNOWN_INNER = {
    'pixel_decoder': re.compile(
        r'^(input_proj\.\d+\.[01]\.|transformer\.level_embed$|transformer\.encoder\.layers\.\d+\.'
        r'(self_attn\.(sampling_offsets|attention_weights|value_proj|output_proj)|norm1|linear1|linear2|norm2)\.'
        r'|mask_features\.|adapter_\d+\.|layer_\d+\.)'),
    'transformer_decoder': re.compile(
        r'^(transformer_(self|cross)_attention_layers\.\d+\.|transformer_ffn_layers\.\d+\.|decoder_norm\.'
        r'|query_feat\.|query_embed\.|level_embed\.|mask_embed\.layers\.\d+\.|input_proj\.\d+\.)'),
    'class_head': re.compile(r'^(class_embed\.layers\.\d+\.(weight|bias)$|_mask_pooling_proj\.[01]\.'
                             r'(weight|bias)$|logit_scale$)'),
    'backbone': re.compile(
        r'^(visual\.|token_embedding\.|positional_embedding$|transformer\.resblocks\.\d+\.|ln_final\.'
        r'|text_projection$|logit_scale$|attn_mask$)'),
    'void_embedding': re.compile(r'^$'),
}

#: open_clip text-tower names (+ CLIP logit_scale): absent from the released files, built by open_clip.
CLIP_TEXT_TOWER_PREFIXES: tuple[str, ...] = (
    'backbone.clip_model.token_embedding.', 'backbone.clip_model.positional_embedding',
    'backbone.clip_model.transformer.', 'backbone.clip_model.ln_final.',
    'backbone.clip_model.text_projection', 'backbone.clip_model.logit_scale',
)

#: CLIP embedding dimension of each released FC-CLIP model (``void_embedding`` / ``class_embed`` width).
MODEL_EMBED_DIMS: dict[str, int] = {
    'convnext_large': 768, 'r50': 1024, 'r101': 512, 'r50x4': 640, 'r50x16': 768, 'r50x64': 1024,
}


#: Groups every released FC-CLIP checkpoint has; a source without one of them is not an FC-CLIP checkpoint.
REQUIRED_GROUPS: tuple[str, ...] = ('backbone', 'pixel_decoder', 'transformer_decoder', 'class_head')


def safe_load_checkpoint(path: str) -> dict[str, Any]:
    """Load a checkpoint without executing pickled code (safetensors or ``torch.load(weights_only=True)``).

    Errors: ``FileNotFoundError``; :class:`CheckpointFormatError` for an empty / text / random / truncated
    file; :class:`UnsafeCheckpointError` for a pickle needing objects beyond tensors and numpy arrays.
    """
    np_globals = numpy_safe_globals()
    # Only the globals not yet allowed: leaving the context removes what it added, and must not remove the
    # process-wide allow-list `import ovseg` registered (later mmengine `--resume` loads would then fail).
    already = set(torch.serialization.get_safe_globals())
    with torch.serialization.safe_globals([g for g in np_globals if g not in already]):
        return load_checkpoint_file(str(path), map_location='cpu')


def extract_state_dict(ckpt: Mapping[str, Any]) -> dict[str, Tensor]:
    """Take ``ckpt['model']`` (detectron2) / ``ckpt['state_dict']`` / a flat dict; numpy → tensors."""
    sd: Any = ckpt
    for key in ('model', 'state_dict'):
        if isinstance(sd, Mapping) and key in sd and isinstance(sd[key], Mapping):
            sd = sd[key]
            break
    out: dict[str, Tensor] = OrderedDict()
    for k, v in sd.items():
        if isinstance(v, np.ndarray):
            v = torch.from_numpy(np.ascontiguousarray(v))
        if not isinstance(v, Tensor):
            continue
        out[k[len('module.'):] if k.startswith('module.') else k] = v
    return out


def convert_key(key: str) -> tuple[str | None, str]:
    """Map one official key → ``(ovseg key or None, group)``; group ``'dropped'`` / ``'unmatched'``."""
    if key in DROPPED_KEYS:
        return None, 'dropped'
    for src, dst, group, exact in PREFIX_RULES:
        if exact:
            if key == src:
                return dst, group
        elif key.startswith(src):
            return dst + key[len(src):], group
    return None, 'unmatched'


class ConversionReport(dict):
    """Plain dict (serializable into checkpoint meta) with a readable ``summary()``."""

    def summary(self) -> str:
        lines = [f"converted {self['num_converted']} / {self['num_source']} tensors"]
        lines += [f'  {g:<20s} {n}' for g, n in sorted(self['counts'].items())]
        for name in ('dropped', 'unmatched', 'unknown_inner', 'shape_errors'):
            if self[name]:
                lines.append(f'{name} ({len(self[name])}): {self[name][:20]}')
        if self['expected_missing']:
            missing = self['expected_missing']
            lines.append(f'expected missing, loaded from open_clip ({len(missing)}): '
                         f"{missing[:8]}{' ...' if len(missing) > 8 else ''}")
        return '\n'.join(lines)


def _group_of_inner(group: str, new_key: str) -> str:
    if group == 'class_head':
        return new_key[len('transformer_decoder.class_head.'):]
    if group == 'transformer_decoder':
        return new_key[len('transformer_decoder.'):]
    if group == 'pixel_decoder':
        return new_key[len('pixel_decoder.'):]
    if group == 'backbone':
        return new_key[len('backbone.clip_model.'):]
    return ''


def convert_fcclip_state_dict(state_dict: Mapping[str, Tensor], model: str | None = None,
                              strict: bool = False) -> tuple[dict[str, Tensor], ConversionReport]:
    """Rename an official FC-CLIP state dict to ovseg names.

    Args:
        state_dict: flat official state dict (``ckpt['model']``).
        model: optional released-model name (``convnext_large``, ``r50``, ...) to check the embedding width.
        strict: raise ``ValueError`` on unmatched keys, unknown inner names or a width mismatch.
    Returns:
        ``(new_state_dict, report)``; tensors are the same objects (shapes/dtypes preserved).
    """
    new_sd: dict[str, Tensor] = OrderedDict()
    counts: dict[str, int] = {}
    dropped, unmatched, unknown_inner, shape_errors = [], [], [], []
    for key, value in state_dict.items():
        new_key, group = convert_key(key)
        if group == 'dropped':
            dropped.append(key)
            continue
        if new_key is None:
            unmatched.append(key)
            continue
        if not _KNOWN_INNER[group].match(_group_of_inner(group, new_key)):
            unknown_inner.append(key)
        if new_key in new_sd:
            raise ValueError(f'two source keys map to {new_key!r}')
        new_sd[new_key] = value
        counts[group] = counts.get(group, 0) + 1
    expected_missing = [p for p in CLIP_TEXT_TOWER_PREFIXES if not any(k.startswith(p) for k in new_sd)]
    if model is not None:
        if model not in MODEL_EMBED_DIMS:
            raise ValueError(f'unknown --model {model!r}; choose from {sorted(MODEL_EMBED_DIMS)}')
        dim = MODEL_EMBED_DIMS[model]
        void = new_sd.get('void_embedding.weight')
        if void is not None and tuple(void.shape) != (1, dim):
            shape_errors.append(f'void_embedding.weight {tuple(void.shape)} != (1, {dim}) for {model}')
        pattern = re.compile(r'transformer_decoder\.class_head\.class_embed\.layers\.\d+\.weight$')
        last = [k for k in new_sd if pattern.match(k)]
        if last:
            w = new_sd[sorted(last, key=lambda k: int(k.split('.')[-2]))[-1]]
            if w.shape[0] != dim:
                shape_errors.append(f'class_embed output {w.shape[0]} != {dim} for {model}')
    report = ConversionReport(
        num_source=len(state_dict), num_converted=len(new_sd), counts=counts, dropped=dropped,
        unmatched=unmatched, unknown_inner=unknown_inner, shape_errors=shape_errors,
        expected_missing=expected_missing)
    if strict and (unmatched or unknown_inner or shape_errors):
        raise ValueError('strict conversion failed:\n' + report.summary())
    return new_sd, report


def coco_panoptic_training_meta() -> dict[str, Any]:
    """The training-dataset metainfo of the released models (COCO panoptic, 133 classes with FC-CLIP's synonyms),
    in the ``meta['dataset_meta']`` form mmengine writes for checkpoints it trains."""
    synonyms = load_vocabulary('coco_panoptic')
    cats = load_category_meta('coco_panoptic')
    return dict(classes=tuple(s[0] for s in synonyms), class_synonyms=synonyms,
                is_thing=[bool(c['isthing']) for c in cats], category_ids=[int(c['id']) for c in cats])


def convert_checkpoint_file(src: str, dst: str, model: str | None = None, strict: bool = False,
                            allow_partial: bool = False) -> ConversionReport:
    """Load ``src`` safely, convert, and save ``{'state_dict', 'meta'}`` (mmengine ``load_from`` format).

    Nothing is written when the source is not an FC-CLIP checkpoint: no tensor matched the prefix map, or
    (unless ``allow_partial``) one of :data:`REQUIRED_GROUPS` is absent — such a file would load as a
    partly random model.
    """
    ckpt = safe_load_checkpoint(src)
    if not isinstance(ckpt, dict):
        raise CheckpointFormatError(f'{src}: expected a dict checkpoint, got {type(ckpt).__name__}')
    state_dict = extract_state_dict(ckpt)
    if not state_dict:
        raise ValueError(f'{src}: no tensors found (expected a detectron2 {{"model": state_dict}} file)')
    new_sd, report = convert_fcclip_state_dict(state_dict, model=model, strict=strict)
    if not new_sd:
        raise ValueError(f"{src}: 0 of {len(state_dict)} tensors match FC-CLIP's names (e.g. "
                         f'{list(state_dict)[:3]}): not an FC-CLIP checkpoint; nothing written')
    missing = [g for g in REQUIRED_GROUPS if not report['counts'].get(g)]
    if missing and not allow_partial:
        raise ValueError(f'{src}: no {", ".join(missing)} tensors among the {report["num_converted"]} converted: '
                         'not a complete FC-CLIP checkpoint; nothing written (--allow-partial writes it anyway)')
    meta: MutableMapping[str, Any] = {
        'converted_from': str(src), 'converter': 'tools/model_converters/fcclip_to_ovseg.py',
        'source_format': 'detectron2 FC-CLIP', 'model': model or 'unspecified',
        'counts': dict(report['counts']), 'dropped': list(report['dropped']),
        'unmatched': list(report['unmatched']), 'expected_missing': list(report['expected_missing']),
        # every released FC-CLIP was trained on COCO panoptic: the classes its α (seen) / β (unseen) split uses
        'dataset_meta': coco_panoptic_training_meta(),
    }
    atomic_torch_save({'state_dict': new_sd, 'meta': dict(meta)}, dst)
    return report
