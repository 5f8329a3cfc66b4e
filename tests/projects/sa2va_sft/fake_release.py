"""A fake released Sa2VA InternVL-family HF folder: tiny dims, the real key names and config layout.

The key names are spelled out here from the release's own modules (``modeling_intern_vit.py``,
``modeling_sa2va_chat.py``, the vendored ``sam2.py``), independently of ovseg's modules, so a naming mistake in
ovseg shows up as missing / unexpected keys when the folder is loaded. Only a few LLM / SAM2 /
``text_hidden_fcs`` tensors are written: enough to check that the reader keeps them and renames ``g_weight``.
"""
from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping

import torch
from safetensors.torch import save_file
from torch import Tensor


def vision_key_shapes(hidden: int, intermediate: int, layers: int, grid: int, patch: int, norm_type: str,
                      qk_normalization: bool, qkv_bias: bool) -> dict[str, tuple[int, ...]]:
    """``vision_model.*`` keys of the release and their shapes."""
    c = hidden
    shapes: dict[str, tuple[int, ...]] = {
        'vision_model.embeddings.class_embedding': (1, 1, c),
        'vision_model.embeddings.patch_embedding.weight': (c, 3, patch, patch),
        'vision_model.embeddings.patch_embedding.bias': (c,),
        'vision_model.embeddings.position_embedding': (1, grid * grid + 1, c),
    }
    for i in range(layers):
        p = f'vision_model.encoder.layers.{i}.'
        shapes[p + 'ls1'] = (c,)
        shapes[p + 'ls2'] = (c,)
        for norm in ('norm1', 'norm2'):
            shapes[f'{p}{norm}.weight'] = (c,)
            if norm_type == 'layer_norm':
                shapes[f'{p}{norm}.bias'] = (c,)
        shapes[p + 'attn.qkv.weight'] = (3 * c, c)
        if qkv_bias:
            shapes[p + 'attn.qkv.bias'] = (3 * c,)
        if qk_normalization:
            shapes[p + 'attn.q_norm.weight'] = (c,)
            shapes[p + 'attn.k_norm.weight'] = (c,)
        shapes[p + 'attn.proj.weight'] = (c, c)
        shapes[p + 'attn.proj.bias'] = (c,)
        shapes[p + 'mlp.fc1.weight'] = (intermediate, c)
        shapes[p + 'mlp.fc1.bias'] = (intermediate,)
        shapes[p + 'mlp.fc2.weight'] = (c, intermediate)
        shapes[p + 'mlp.fc2.bias'] = (c,)
    return shapes


def other_key_shapes(vit_hidden: int, llm_hidden: int, vocab: int, sam2_dim: int) -> dict[str, tuple[int, ...]]:
    """``mlp1.*`` (complete) and a sample of ``language_model.*``, ``text_hidden_fcs.*`` and
    ``grounding_encoder.sam2_model.*`` keys (incl. the memory-encoder layer scales stored as ``g_weight``)."""
    w = vit_hidden * 4
    sam = 'grounding_encoder.sam2_model.memory_encoder.fuser.layers.'
    return {
        'mlp1.0.weight': (w,), 'mlp1.0.bias': (w,),
        'mlp1.1.weight': (llm_hidden, w), 'mlp1.1.bias': (llm_hidden,),
        'mlp1.3.weight': (llm_hidden, llm_hidden), 'mlp1.3.bias': (llm_hidden,),
        'language_model.model.embed_tokens.weight': (vocab, llm_hidden),
        'language_model.model.norm.weight': (llm_hidden,),
        'language_model.lm_head.weight': (vocab, llm_hidden),
        'text_hidden_fcs.0.weight': (llm_hidden, llm_hidden), 'text_hidden_fcs.0.bias': (llm_hidden,),
        'text_hidden_fcs.2.weight': (sam2_dim, llm_hidden), 'text_hidden_fcs.2.bias': (sam2_dim,),
        sam + '0.dwconv.weight': (sam2_dim, 1, 7, 7),
        sam + '0.g_weight': (sam2_dim,),
        sam + '1.g_weight': (sam2_dim,),
    }


def fake_config(vit_hidden: int, vit_heads: int, vit_intermediate: int, vit_layers: int, image_size: int,
                patch_size: int, llm_hidden: int, vocab: int, norm_type: str, qk_normalization: bool,
                qkv_bias: bool) -> dict:
    """A config.json laid out like a Sa2VA-1B / InternVL3 release (values tiny)."""
    return {
        'architectures': ['Sa2VAChatModel'],
        'auto_map': {'AutoConfig': 'configuration_sa2va_chat.Sa2VAChatConfig',
                     'AutoModel': 'modeling_sa2va_chat.Sa2VAChatModel',
                     'AutoModelForCausalLM': 'modeling_sa2va_chat.Sa2VAChatModel'},
        'model_type': 'sa2va_chat',
        'downsample_ratio': 0.5, 'dynamic_image_size': True, 'force_image_size': image_size,
        'max_dynamic_patch': 12, 'min_dynamic_patch': 1, 'pad2square': False, 'ps_version': 'v2',
        'select_layer': -1, 'template': 'qwen_chat', 'torch_dtype': 'bfloat16', 'use_backbone_lora': 0,
        'use_llm_lora': 0, 'use_thumbnail': True,
        'llm_config': {'architectures': ['Qwen2ForCausalLM'], 'model_type': 'qwen2', 'hidden_size': llm_hidden,
                       'intermediate_size': 2 * llm_hidden, 'num_hidden_layers': 1, 'num_attention_heads': 2,
                       'num_key_value_heads': 1, 'vocab_size': vocab, 'rms_norm_eps': 1e-6,
                       'tie_word_embeddings': False, 'torch_dtype': 'bfloat16'},
        'vision_config': {
            'architectures': ['InternVisionModel'], 'model_type': 'intern_vit_6b',
            'attention_dropout': 0.0, 'drop_path_rate': 0.0, 'dropout': 0.0, 'hidden_act': 'gelu',
            'hidden_size': vit_hidden, 'image_size': image_size, 'initializer_factor': 1.0,
            'initializer_range': 0.02, 'intermediate_size': vit_intermediate, 'layer_norm_eps': 1e-6,
            'norm_type': norm_type, 'num_attention_heads': vit_heads, 'num_channels': 3,
            'num_hidden_layers': vit_layers, 'output_attentions': False, 'output_hidden_states': False,
            'patch_size': patch_size, 'qk_normalization': qk_normalization, 'qkv_bias': qkv_bias,
            'return_dict': True, 'torch_dtype': 'bfloat16', 'use_bfloat16': True, 'use_flash_attn': True,
            'use_moe': False,
        },
    }


def write_fake_release(folder: str | os.PathLike, *, num_shards: int = 1, vit_hidden: int = 16, vit_heads: int = 2,
                       vit_intermediate: int = 32, vit_layers: int = 2, image_size: int = 56, patch_size: int = 14,
                       llm_hidden: int = 24, vocab: int = 40, sam2_dim: int = 8, norm_type: str = 'layer_norm',
                       qk_normalization: bool = False, qkv_bias: bool = True, drop_keys: Iterable[str] = (),
                       extra: Mapping[str, Tensor] | None = None, seed: int = 0) -> dict[str, Tensor]:
    """Write ``config.json`` + ``model.safetensors`` (``num_shards=1``) or ``num_shards`` shards and an index
    into ``folder``; bf16 random tensors as in the releases. Returns the written state dict."""
    os.makedirs(folder, exist_ok=True)
    config = fake_config(vit_hidden, vit_heads, vit_intermediate, vit_layers, image_size, patch_size, llm_hidden,
                         vocab, norm_type, qk_normalization, qkv_bias)
    with open(os.path.join(folder, 'config.json'), 'w', encoding='utf-8') as f:
        json.dump(config, f, indent=2)
    shapes = vision_key_shapes(vit_hidden, vit_intermediate, vit_layers, image_size // patch_size, patch_size,
                               norm_type, qk_normalization, qkv_bias)
    shapes.update(other_key_shapes(vit_hidden, llm_hidden, vocab, sam2_dim))
    gen = torch.Generator().manual_seed(seed)
    drop = set(drop_keys)
    sd = {k: (torch.randn(s, generator=gen) * 0.2).to(torch.bfloat16) for k, s in shapes.items() if k not in drop}
    sd.update(extra or {})
    if num_shards == 1:
        save_file(sd, os.path.join(folder, 'model.safetensors'), metadata={'format': 'pt'})
        return sd
    keys = list(sd)
    weight_map = {}
    for i in range(num_shards):
        name = f'model-{i + 1:05d}-of-{num_shards:05d}.safetensors'
        part = {k: sd[k] for k in keys[i::num_shards]}
        save_file(part, os.path.join(folder, name), metadata={'format': 'pt'})
        weight_map.update({k: name for k in part})
    total = sum(t.numel() * t.element_size() for t in sd.values())
    with open(os.path.join(folder, 'model.safetensors.index.json'), 'w', encoding='utf-8') as f:
        json.dump({'metadata': {'total_size': total}, 'weight_map': weight_map}, f, indent=2)
    return sd
