"""Export a (LoRA-fine-tuned) ovseg Sa2VA as a folder in the layout of the HF release, which ``Sa2VA(release=...)``
(and the release's own loader, for the InternVL family) reads back.

The folder: ``config.json`` (the release's ``Sa2VAChatConfig`` fields: ``vision_config``, ``llm_config``,
``template``, ``downsample_ratio``, ``select_layer``, ``ps_version``, ``force_image_size``, ``min/max_dynamic_patch``,
plus ``ovseg_grounding_encoder``: the SAM2 argument tree when it is not the release's Hiera-L), ``model.safetensors``
(LoRA merged into the base weights, release key names: ``.gamma`` → ``.g_weight``) and the tokenizer files.
"""
from __future__ import annotations

import copy
import json
import os
from typing import Any

import torch
from torch import nn

from ovseg.models.peft.lora import merge_lora
from ovseg.utils.atomic_io import atomic_write_bytes

from .grounding_encoder import SA2VA_SAM2_CONFIG
from .release_names import CONFIG_FILE, SINGLE_FILE, ovseg_to_release_state_dict


def release_config(model: nn.Module) -> dict[str, Any]:
    """``config.json`` content of ``model`` (an ovseg ``Sa2VA``)."""
    llm = model.language_model
    llm_cfg = llm.config.to_dict()
    llm_cfg['vocab_size'] = int(llm.get_input_embeddings().weight.shape[0])
    vision = model.vision_model.config.to_dict()
    cfg: dict[str, Any] = dict(
        architectures=['Sa2VAChatModel'], model_type='sa2va_chat', vision_config=vision, llm_config=llm_cfg,
        template=model.template_name, downsample_ratio=model.downsample_ratio, select_layer=model.select_layer,
        ps_version=model.ps_version, force_image_size=model.image_size, min_dynamic_patch=model.min_dynamic_patch,
        max_dynamic_patch=model.max_dynamic_patch, use_thumbnail=True)
    sam2_cfg = getattr(model, 'sam2_cfg', SA2VA_SAM2_CONFIG)
    if sam2_cfg != SA2VA_SAM2_CONFIG:  # the release's SAM2 is Hiera-L; anything else is written down
        cfg['ovseg_grounding_encoder'] = dict(sam2_cfg=sam2_cfg)
    return cfg


def export_release(model: nn.Module, folder: str | os.PathLike, dtype: torch.dtype | None = None) -> dict[str, Any]:
    """Write ``model`` (LoRA merged on a copy; the model itself is unchanged) as a release folder; returns the
    config. ``dtype`` casts floating tensors (the releases store bf16; default: keep)."""
    from safetensors.torch import save

    folder = os.fspath(folder)
    os.makedirs(folder, exist_ok=True)
    merged = merge_lora(copy.deepcopy(model))
    state = {k: v.detach().cpu().contiguous() for k, v in merged.state_dict().items()}
    if dtype is not None:
        state = {k: v.to(dtype) if v.is_floating_point() else v for k, v in state.items()}
    release_sd, _ = ovseg_to_release_state_dict(state)
    # tied embeddings share storage: safetensors refuses shared tensors, and the release stores both names
    release_sd = {k: v.clone() for k, v in release_sd.items()}
    config = release_config(model)
    atomic_write_bytes(os.path.join(folder, SINGLE_FILE), save(release_sd, metadata=dict(format='pt')))
    atomic_write_bytes(os.path.join(folder, CONFIG_FILE), json.dumps(config, indent=2, default=str).encode())
    model.tokenizer.save_pretrained(folder)
    return config
