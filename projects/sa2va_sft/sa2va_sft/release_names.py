"""Key names of the released Sa2VA InternVL-family HF folders, and reading such a folder with no remote code.

Why this is a rename map and nothing more: ovseg's Sa2VA keeps the attribute names of the release's
``Sa2VAChatModel`` (``vision_model``, ``mlp1``, ``language_model``, ``grounding_encoder.sam2_model``,
``text_hidden_fcs``), and inside them the names of the modules the release was built from, so a released key
is an ovseg key up to one rename:

==========================================================  ==========================================================
release ``model*.safetensors``                              ovseg module
==========================================================  ==========================================================
``vision_model.*``                                          :class:`~.intern_vit.InternVisionModel` (same names)
``mlp1.{0,1,3}.*``                                          :func:`~.projector.build_mlp1` (same names)
``language_model.{model,lm_head}.*``                        transformers' Qwen2 / Qwen3 / Llama ``...ForCausalLM``
``grounding_encoder.sam2_model.*``                          Meta's ``sam2`` ``SAM2Base`` (see the rename below)
``text_hidden_fcs.{0,2}.*``                                 ``Sequential(Linear(H, H), ReLU, Linear(H, 256), Dropout)``
==========================================================  ==========================================================

The one rename, ``g_weight`` ↔ ``gamma``: Sa2VA's ``tools/convert_to_hf.py`` replaces ``.gamma`` by
``.g_weight`` in every key (and ``tools/convert_to_pth.py`` undoes it), because older transformers rename a
parameter called ``gamma`` to ``weight`` when loading. The only ``gamma`` parameters in the model are the
layer scales of SAM2's memory-encoder ConvNeXt blocks (Meta's ``CXBlock.gamma``; the release's vendored
``sam2.py`` calls it ``g_weight``): ``grounding_encoder.sam2_model.memory_encoder.fuser.layers.{0,1}.g_weight``.
InternViT's layer scales are plain parameters named ``ls1`` / ``ls2`` in both the original InternVL code and
the release (no ``.gamma``, no ``.g_weight``), so they need no rename. The rename is applied to whole key
segments only (``.g_weight.`` / a trailing ``.g_weight``), in every part, like the official tools.

A release folder is ``config.json`` plus either ``model.safetensors`` or the shards
``model-0000i-of-0000n.safetensors`` listed by ``model.safetensors.index.json`` (``weight_map``: key → shard).
:func:`read_release_state_dict` validates it (missing shard, key in the index but not in its shard, key in a
shard but not in the index, a key in two shards → a clear error naming the file) and never unpickles anything.
"""
from __future__ import annotations

import logging
import os
import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from ovseg.utils.json_io import read_json

logger = logging.getLogger(__name__)

__all__ = ['RELEASE_PARTS', 'CONFIG_FILE', 'SINGLE_FILE', 'INDEX_FILE', 'release_part', 'release_to_ovseg_key',
           'ovseg_to_release_key', 'release_to_ovseg_state_dict', 'ovseg_to_release_state_dict', 'RenameReport',
           'read_release_state_dict', 'sub_state_dict', 'LoadReport', 'load_part', 'VisionSettings',
           'vision_settings_from_config', 'build_vision_from_release', 'intern_vit_to_transformers']

#: Top-level prefixes of a Sa2VA InternVL-family release and what ovseg builds for each.
RELEASE_PARTS: dict[str, str] = {
    'vision_model.': 'InternVisionModel (projects.sa2va_sft.sa2va_sft.intern_vit)',
    'mlp1.': 'build_mlp1 (projects.sa2va_sft.sa2va_sft.projector)',
    'language_model.': "transformers' Qwen2/Qwen3/Llama ForCausalLM",
    'grounding_encoder.sam2_model.': "Meta's sam2 SAM2Base",
    'text_hidden_fcs.': 'Linear-ReLU-Linear-Dropout [SEG] → SAM2 prompt MLP',
}

CONFIG_FILE = 'config.json'
SINGLE_FILE = 'model.safetensors'
INDEX_FILE = 'model.safetensors.index.json'
_SHARD_RE = re.compile(r'^model-\d+-of-\d+\.safetensors$')
_RELEASE_SEG, _OVSEG_SEG = 'g_weight', 'gamma'


# ------------------------------------------------------------------------------------------- key renames
def release_part(key: str) -> str | None:
    """The :data:`RELEASE_PARTS` prefix a key belongs to, or None for a key outside every part."""
    return next((p for p in RELEASE_PARTS if key.startswith(p)), None)


def _swap_segment(key: str, old: str, new: str) -> str:
    parts = key.split('.')
    return '.'.join(new if p == old else p for p in parts)


def release_to_ovseg_key(key: str) -> str:
    """Release key → ovseg key (``...g_weight`` → ``...gamma``; everything else unchanged)."""
    return _swap_segment(key, _RELEASE_SEG, _OVSEG_SEG)


def ovseg_to_release_key(key: str) -> str:
    """ovseg key → release key (``...gamma`` → ``...g_weight``), the inverse of :func:`release_to_ovseg_key`."""
    return _swap_segment(key, _OVSEG_SEG, _RELEASE_SEG)


@dataclass
class RenameReport:
    """What a rename did: tensors per part, the renamed keys, and keys outside every known part (kept)."""

    counts: dict[str, int] = field(default_factory=dict)
    renamed: list[tuple[str, str]] = field(default_factory=list)
    outside_parts: list[str] = field(default_factory=list)

    def summary(self) -> str:
        lines = [f'{sum(self.counts.values())} tensors: ' + ', '.join(f'{p.rstrip(".")} {n}'
                                                                    for p, n in sorted(self.counts.items()))]
        if self.renamed:
            lines.append(f'renamed {len(self.renamed)}: {self.renamed[:4]}')
        if self.outside_parts:
            lines.append(f'outside the known parts {sorted(RELEASE_PARTS)} ({len(self.outside_parts)}, kept as is): '
                         f'{self.outside_parts[:8]}')
        return '\n'.join(lines)


def _rename_all(state_dict: Mapping[str, Tensor], fn: Any) -> tuple[dict[str, Tensor], RenameReport]:
    out: dict[str, Tensor] = {}
    report = RenameReport()
    counts: Counter[str] = Counter()
    for key, value in state_dict.items():
        new = fn(key)
        if new in out:
            raise ValueError(f'two keys map to {new!r} (one of them is {key!r}): the state dict mixes release and '
                             'ovseg names')
        out[new] = value
        part = release_part(new)
        if part is None:
            report.outside_parts.append(key)
            counts['(other).'] += 1
        else:
            counts[part] += 1
        if new != key:
            report.renamed.append((key, new))
    report.counts = dict(counts)
    return out, report


def release_to_ovseg_state_dict(state_dict: Mapping[str, Tensor]) -> tuple[dict[str, Tensor], RenameReport]:
    """Rename a whole release state dict to ovseg names; keys outside the known parts are kept and reported."""
    return _rename_all(state_dict, release_to_ovseg_key)


def ovseg_to_release_state_dict(state_dict: Mapping[str, Tensor]) -> tuple[dict[str, Tensor], RenameReport]:
    """Rename an ovseg Sa2VA state dict to release names (for writing an HF-layout folder)."""
    return _rename_all(state_dict, ovseg_to_release_key)


# ------------------------------------------------------------------------------------------ reading a folder
def read_release_json(path: str, what: str) -> dict[str, Any]:
    """A JSON object of a release folder (config, index), errors naming the file."""
    return read_json(path, what, expect=dict)


def _open_safetensors(path: str, prefixes: tuple[str, ...] | None) -> tuple[set[str], dict[str, Tensor]]:
    """(every tensor name in the file, the tensors whose name starts with one of ``prefixes`` / all)."""
    from safetensors import SafetensorError, safe_open  # transformers' dependency; only needed to read a release
    try:
        with safe_open(path, framework='pt', device='cpu') as f:
            names = set(f.keys())
            return names, {k: f.get_tensor(k) for k in sorted(names) if prefixes is None or k.startswith(prefixes)}
    except (SafetensorError, OSError) as err:
        raise ValueError(f'{path}: not a readable safetensors file ({err})') from None


def read_release_state_dict(folder: str | os.PathLike, prefixes: tuple[str, ...] | None = None) \
        -> tuple[dict[str, Any], dict[str, Tensor]]:
    """``(config dict, state dict with the release's key names)`` of a released Sa2VA HF folder.

    Reads ``config.json`` and ``model.safetensors``, or the shards named by ``model.safetensors.index.json``
    (the index wins when both exist, as in transformers). ``prefixes`` (e.g. ``('vision_model.', 'mlp1.')``)
    loads only those tensors; every file is still checked in full. Tensors keep their stored dtype (bf16 in
    the releases). Raises ``FileNotFoundError`` naming the missing file (folder, config, weights, a shard) and
    ``ValueError`` for an inconsistent index or unreadable file.
    """
    folder = os.fspath(folder)
    if isinstance(prefixes, str):
        prefixes = (prefixes,)
    if not os.path.isdir(folder):
        raise FileNotFoundError(f'release folder not found: {folder}')
    config_path = os.path.join(folder, CONFIG_FILE)
    if not os.path.isfile(config_path):
        raise FileNotFoundError(f'{config_path} not found: a release folder holds config.json next to its weights')
    config = read_release_json(config_path, 'the model config')

    index_path = os.path.join(folder, INDEX_FILE)
    single_path = os.path.join(folder, SINGLE_FILE)
    present = sorted(n for n in os.listdir(folder) if n.endswith('.safetensors'))
    if os.path.isfile(index_path):
        names, state_dict = _read_sharded(folder, index_path, present, prefixes)
    elif os.path.isfile(single_path):
        names, state_dict = _open_safetensors(single_path, prefixes)
        extra = [n for n in present if n != SINGLE_FILE]
        if extra:
            logger.warning('%s: ignoring %d other .safetensors file(s) next to %s: %s', folder, len(extra),
                           SINGLE_FILE, extra)
    else:
        shards = [n for n in present if _SHARD_RE.match(n)]
        if shards:
            raise FileNotFoundError(f'{index_path} not found: {folder} has shards {shards[:4]} but no index that '
                                    'maps keys to shards')
        others = sorted(os.listdir(folder))
        raise FileNotFoundError(f'{folder}: no {SINGLE_FILE} and no {INDEX_FILE} (found {others[:10]}); only '
                                'safetensors releases are read (no pickled .bin files)')
    if not names:
        raise ValueError(f'{folder}: the weights hold no tensors')
    if prefixes is not None and not state_dict:
        raise ValueError(f'{folder}: no tensor starts with any of {list(prefixes)}')
    return config, state_dict


def _read_sharded(folder: str, index_path: str, present: list[str], prefixes: tuple[str, ...] | None) \
        -> tuple[set[str], dict[str, Tensor]]:
    index = read_release_json(index_path, 'a safetensors index')
    weight_map = index.get('weight_map')
    if not isinstance(weight_map, dict) or not weight_map:
        raise ValueError(f'{index_path}: expected a non-empty "weight_map" object (tensor name → shard file)')
    by_shard: dict[str, set[str]] = {}
    for key, shard in weight_map.items():
        if not isinstance(shard, str) or os.path.basename(shard) != shard or not shard.endswith('.safetensors'):
            raise ValueError(f'{index_path}: weight_map[{key!r}] = {shard!r} is not a .safetensors file name in the '
                             'folder')
        by_shard.setdefault(shard, set()).add(key)
    missing = [s for s in sorted(by_shard) if not os.path.isfile(os.path.join(folder, s))]
    if missing:
        raise FileNotFoundError(f'{index_path} lists shard(s) that are not in {folder}: {missing} '
                                f'({len(missing)} of {len(by_shard)} shards missing; an interrupted download?)')
    unlisted = [n for n in present if n not in by_shard]  # incl. a model.safetensors next to the index
    if unlisted:
        logger.warning('%s: %d .safetensors file(s) not referenced by %s are ignored: %s', folder, len(unlisted),
                       INDEX_FILE, unlisted)
    state_dict: dict[str, Tensor] = {}
    for shard in sorted(by_shard):
        path = os.path.join(folder, shard)
        names, tensors = _open_safetensors(path, prefixes)
        absent = sorted(by_shard[shard] - names)
        if absent:
            raise ValueError(f'{path}: {len(absent)} tensor(s) that {INDEX_FILE} maps to this shard are not in it: '
                             f'{absent[:5]}')
        stray = sorted(names - by_shard[shard])
        if stray:
            raise ValueError(f'{path}: {len(stray)} tensor(s) in this shard are not mapped to it by {INDEX_FILE}: '
                             f'{stray[:5]}')
        state_dict.update(tensors)
    return set(weight_map), state_dict


# -------------------------------------------------------------------------------------- loading a part
def sub_state_dict(state_dict: Mapping[str, Tensor], prefix: str) -> dict[str, Tensor]:
    """The tensors under ``prefix`` (e.g. ``'vision_model.'``), with the prefix stripped."""
    if not prefix.endswith('.'):
        raise ValueError(f'prefix must end with ".", got {prefix!r}')
    return {k[len(prefix):]: v for k, v in state_dict.items() if k.startswith(prefix)}


@dataclass
class LoadReport:
    """Keys loaded into one part; ``missing``: the module's keys the weights lack (left at their init);
    ``unexpected``: keys under the part's prefix the module does not have (not loaded)."""

    prefix: str
    loaded: int
    missing: list[str]
    unexpected: list[str]

    @property
    def complete(self) -> bool:
        return not self.missing and not self.unexpected

    def summary(self) -> str:
        text = f'{self.prefix}: loaded {self.loaded}, missing {len(self.missing)}, unexpected {len(self.unexpected)}'
        if self.missing:
            text += f'\n  missing: {self.missing[:10]}'
        if self.unexpected:
            text += f'\n  unexpected: {self.unexpected[:10]}'
        return text


def load_part(module: nn.Module, state_dict: Mapping[str, Tensor], prefix: str, source: str = 'weights') \
        -> LoadReport:
    """Copy ``state_dict[prefix + k]`` into ``module``'s ``k`` (cast to the module's dtype); report missing and
    unexpected keys. A shape mismatch is an error naming the key and both shapes (never silently skipped)."""
    sub = sub_state_dict(state_dict, prefix)
    own = module.state_dict()
    bad = [f'{prefix}{k}: {source} {tuple(v.shape)} vs model {tuple(own[k].shape)}'
           for k, v in sub.items() if k in own and tuple(v.shape) != tuple(own[k].shape)]
    if bad:
        raise ValueError(f'{source}: shape mismatch for {len(bad)} tensor(s): {bad[:5]}')
    result = module.load_state_dict(sub, strict=False)
    return LoadReport(prefix=prefix, loaded=len(sub) - len(result.unexpected_keys),
                      missing=[prefix + k for k in result.missing_keys],
                      unexpected=[prefix + k for k in result.unexpected_keys])


@dataclass
class VisionSettings:
    """The vision-side fields of a release ``config.json`` (top level, next to ``vision_config``)."""

    select_layer: int
    downsample_ratio: float
    ps_version: str
    image_size: int
    min_dynamic_patch: int
    max_dynamic_patch: int
    use_thumbnail: bool
    llm_hidden_size: int


#: ``Sa2VAChatConfig.__init__`` defaults, used for a field a config.json lacks (every release writes them all).
_SA2VA_CONFIG_DEFAULTS: dict[str, Any] = dict(select_layer=-1, force_image_size=None, downsample_ratio=0.5,
                                              ps_version='v1', min_dynamic_patch=1, max_dynamic_patch=6,
                                              use_thumbnail=False)


def vision_settings_from_config(config: Mapping[str, Any], source: str = CONFIG_FILE) -> VisionSettings:
    """Read :class:`VisionSettings`; the LLM width comes from ``llm_config.hidden_size`` (required)."""
    llm = config.get('llm_config')
    if not isinstance(llm, Mapping) or not isinstance(llm.get('hidden_size'), int):
        raise ValueError(f'{source}: expected "llm_config" with an integer "hidden_size" (the width mlp1 projects '
                         'to)')
    vision = config.get('vision_config')
    if not isinstance(vision, Mapping):
        raise ValueError(f'{source}: expected a "vision_config" object')
    defaulted = sorted(k for k in _SA2VA_CONFIG_DEFAULTS if k not in config)
    if defaulted:
        logger.warning('%s: %s not set; using the Sa2VAChatConfig defaults %s', source, defaulted,
                       {k: _SA2VA_CONFIG_DEFAULTS[k] for k in defaulted})
    get = {k: config.get(k, d) for k, d in _SA2VA_CONFIG_DEFAULTS.items()}
    image_size = get['force_image_size'] or vision.get('image_size')
    if not isinstance(image_size, int):
        raise ValueError(f'{source}: expected an integer vision_config.image_size or force_image_size, got '
                         f'{image_size!r}')
    return VisionSettings(select_layer=int(get['select_layer']), downsample_ratio=float(get['downsample_ratio']),
                          ps_version=str(get['ps_version']), image_size=image_size,
                          min_dynamic_patch=int(get['min_dynamic_patch']),
                          max_dynamic_patch=int(get['max_dynamic_patch']), use_thumbnail=bool(get['use_thumbnail']),
                          llm_hidden_size=int(llm['hidden_size']))


def build_vision_from_release(folder: str | os.PathLike, dtype: torch.dtype = torch.float32) \
        -> tuple[nn.Module, nn.Sequential, VisionSettings, dict[str, LoadReport]]:
    """``(vision_model, mlp1, settings, {'vision_model.': report, 'mlp1.': report})`` built from a release
    folder's config and loaded from its weights (only the ``vision_model.`` / ``mlp1.`` tensors are read; the
    LLM / SAM2 / ``text_hidden_fcs`` ones belong to the full model)."""
    from .intern_vit import InternVisionConfig, InternVisionModel
    from .projector import build_mlp1

    config, release_sd = read_release_state_dict(folder, prefixes=('vision_model.', 'mlp1.'))
    source = os.path.join(os.fspath(folder), CONFIG_FILE)
    settings = vision_settings_from_config(config, source)
    vision_cfg = InternVisionConfig.from_dict(config['vision_config'], source=f'{source} vision_config')
    vision_model = InternVisionModel(vision_cfg).to(dtype)
    mlp1 = build_mlp1(vision_cfg.hidden_size, settings.llm_hidden_size, settings.downsample_ratio).to(dtype)
    state_dict, _ = release_to_ovseg_state_dict(release_sd)
    weights = os.fspath(folder)
    reports = {'vision_model.': load_part(vision_model, state_dict, 'vision_model.', source=weights),
               'mlp1.': load_part(mlp1, state_dict, 'mlp1.', source=weights)}
    for report in reports.values():
        (logger.info if report.complete else logger.warning)('%s', report.summary())
    return vision_model, mlp1, settings, reports


# ----------------------------------------------------------------- InternViT → transformers' InternVLVisionModel
_TO_TRANSFORMERS = (  # (pattern on an InternViT key, replacement), applied in order; verified by the parity test
    (re.compile(r'^embeddings\.class_embedding$'), 'embeddings.cls_token'),
    (re.compile(r'^embeddings\.position_embedding$'), 'embeddings.position_embeddings'),
    (re.compile(r'^embeddings\.patch_embedding\.'), 'embeddings.patch_embeddings.projection.'),
    (re.compile(r'^encoder\.layers\.(\d+)\.ls(\d)$'), r'encoder.layer.\1.lambda_\2'),
    (re.compile(r'^encoder\.layers\.(\d+)\.norm1\.'), r'encoder.layer.\1.layernorm_before.'),
    (re.compile(r'^encoder\.layers\.(\d+)\.norm2\.'), r'encoder.layer.\1.layernorm_after.'),
    (re.compile(r'^encoder\.layers\.(\d+)\.attn\.proj\.'), r'encoder.layer.\1.attention.projection_layer.'),
    (re.compile(r'^encoder\.layers\.(\d+)\.attn\.([qk]_norm)\.'), r'encoder.layer.\1.attention.\2.'),
    (re.compile(r'^encoder\.layers\.(\d+)\.mlp\.'), r'encoder.layer.\1.mlp.'),
)


def intern_vit_to_transformers(state_dict: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """InternViT (release names, without the ``vision_model.`` prefix) → transformers' ``InternVLVisionModel``
    names: ``attn.qkv`` split into ``attention.{q,k,v}_proj`` (rows [0:C], [C:2C], [2C:3C]), ``ls1/2`` →
    ``lambda_1/2``, ``norm1/2`` → ``layernorm_before/after``, ``attn.proj`` → ``attention.projection_layer``,
    ``class_embedding`` → ``cls_token``, ``patch_embedding`` → ``patch_embeddings.projection``,
    ``position_embedding`` → ``position_embeddings`` (transformers' ``convert_internvl_weights_to_hf.py``).
    An unknown key is an error."""
    out: dict[str, Tensor] = {}
    for key, value in state_dict.items():
        qkv = re.match(r'^encoder\.layers\.(\d+)\.attn\.qkv\.(weight|bias)$', key)
        if qkv:
            layer, kind = qkv.groups()
            for name, chunk in zip(('q_proj', 'k_proj', 'v_proj'), value.chunk(3, dim=0)):
                out[f'encoder.layer.{layer}.attention.{name}.{kind}'] = chunk.clone()
            continue
        for pattern, repl in _TO_TRANSFORMERS:
            new, n = pattern.subn(repl, key)
            if n:
                out[new] = value
                break
        else:
            raise KeyError(f'no transformers InternVLVisionModel name for InternViT key {key!r}')
    return out
