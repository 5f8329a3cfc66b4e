"""Sa2VA's language side, model half: the causal LM from a config (no remote code), the LoRA declaration for
the core wrapper, and greedy generation that returns the hidden states of the generated ``[SEG]`` tokens.

Facts ([v2] ``bytedance/Sa2VA`` @ 9832e1a
``projects/sa2va/hf/models/modeling_sa2va_chat.py``):

* ``predict_forward`` generates greedily with a KV cache (``do_sample=False``, ``use_cache=True``) from
  ``inputs_embeds`` and ``output_hidden_states=True, return_dict_in_generate=True``; it concatenates the last
  layer's states of every step and ``get_seg_hidden_states`` keeps those whose *input* token is ``[SEG]``
  (``hidden_states[-n_out:][output_ids[:-1] == seg_id]``): the state computed at the ``[SEG]`` position, as in
  training (``hidden_states[-1][input_ids == seg_token_idx]``). A ``[SEG]`` generated as the very last token
  is never fed back, so it gets no state there.
* LoRA: r 128, alpha 256, dropout 0.05 on every ``nn.Linear`` of the LLM but ``lm_head`` (xtuner
  ``find_all_linear_names``), i.e. q/k/v/o/gate/up/down_proj for Qwen2 / Qwen3 / Llama.
"""
from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import torch
from torch import Tensor, nn

__all__ = ['TINY_QWEN2', 'SUPPORTED_LLM_TYPES', 'SA2VA_LORA_TARGETS', 'SegGeneration', 'build_language_model',
           'sa2va_lora_config', 'linear_layer_names', 'verify_sa2va_lora', 'greedy_generate_with_seg']

# The toy LLM (2 layers, hidden 64: trains on a CPU in seconds); give vocab_size=len(tokenizer) when building it.
TINY_QWEN2: dict[str, Any] = dict(model_type='qwen2', num_hidden_layers=2, hidden_size=64, num_attention_heads=4,
                                  num_key_value_heads=2, intermediate_size=128, max_position_embeddings=4096)
# LLMs of the released InternVL-family Sa2VA models that transformers ships (Sa2VA-1B/4B, InternVL3-2B/8B/14B:
# Qwen2.5; Qwen3 and Llama for InternVL3.5 / custom bases).
SUPPORTED_LLM_TYPES = ('qwen2', 'qwen3', 'llama')
# Linear leaf names of those LLMs, = HF ``wrap_llm_lora`` for Qwen2/Llama and xtuner's find_all_linear_names
SA2VA_LORA_TARGETS = ('q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj')


class SegGeneration(NamedTuple):
    """``sequences``: (B, T) generated ids (prompt not included), ``pad_token_id`` after a sample stopped.
    ``seg_hidden_states``: per sample, (n_seg, H) last-layer states at its generated ``[SEG]`` positions."""
    sequences: Tensor
    seg_hidden_states: list[Tensor]


def _is_internlm2(cfg: Mapping[str, Any]) -> bool:
    archs = cfg.get('architectures') or []
    return 'internlm2' in str(cfg.get('model_type', '')).lower() or any('InternLM2' in a for a in archs)


def build_language_model(config: Mapping[str, Any] | Any, dtype: torch.dtype | None = None,
                         attn_implementation: str | None = None) -> nn.Module:
    """``AutoModelForCausalLM.from_config`` for a Qwen2 / Qwen3 / Llama config (dict or ``PretrainedConfig``),
    random init, no remote code. A dict is a release's ``llm_config`` or ``dict(TINY_QWEN2, vocab_size=...)``
    and must give ``model_type`` and ``vocab_size`` (a missing vocab would silently default to Qwen's 151936).
    InternLM2 (Sa2VA-8B/26B) is refused: transformers has no native class and we run no remote code.
    """
    from transformers import AutoConfig, AutoModelForCausalLM, PretrainedConfig

    if isinstance(config, PretrainedConfig):
        cfg_dict = config.to_dict()
    elif isinstance(config, Mapping):
        cfg_dict = dict(config)
    else:
        raise TypeError(f'build_language_model: config must be a dict or PretrainedConfig, got {type(config)}')
    if _is_internlm2(cfg_dict):
        raise ValueError('out of scope: Sa2VA-8B/26B (InternLM2 language model; transformers has no native '
                         'InternLM2 and remote code is never run). Supported: ' + ', '.join(SUPPORTED_LLM_TYPES))
    model_type = cfg_dict.get('model_type')
    if model_type not in SUPPORTED_LLM_TYPES:
        raise ValueError(f'build_language_model: model_type {model_type!r} is not supported '
                         f'(expected one of {SUPPORTED_LLM_TYPES})')
    if isinstance(config, Mapping):
        if not cfg_dict.get('vocab_size'):
            raise ValueError("build_language_model: the config dict needs 'vocab_size' (e.g. len(tokenizer))")
        rest = {k: v for k, v in cfg_dict.items() if k not in ('model_type', 'auto_map', 'architectures')}
        config = AutoConfig.for_model(model_type, **rest)
    kwargs: dict[str, Any] = dict(trust_remote_code=False)
    if dtype is not None:
        kwargs['torch_dtype'] = dtype
    if attn_implementation is not None:
        kwargs['attn_implementation'] = attn_implementation
    return AutoModelForCausalLM.from_config(config, **kwargs)


def sa2va_lora_config(module: str = 'language_model', r: int = 128, alpha: float = 256, dropout: float = 0.05,
                      modules_to_save: Sequence[str] | None = None) -> dict[str, Any]:
    """Config of the core ``LoRA`` wrapper (``ovseg.models.peft``, the ``peft`` config key) for Sa2VA.

    Defaults: r 128 / alpha 256 / dropout 0.05 from every v1 config and v2 ``sa2va_in30_2b`` /
    ``sa2va_finetune`` (v2 ``sa2va_in30_8b`` / ``14b`` use r 256 / alpha 512). Targets: the seven linear
    names of Qwen2 / Qwen3 / Llama layers (every Linear but ``lm_head``; check with ``verify_sa2va_lora``).
    ``module``: the LLM's name in the model (``language_model`` as in the HF release); '' if the LLM is the
    model. v2 configs also train ``embed_tokens`` / ``lm_head`` in full (``modules_to_save``); default None.
    """
    cfg: dict[str, Any] = dict(type='LoRA', targets=list(SA2VA_LORA_TARGETS), r=int(r), alpha=float(alpha),
                               dropout=float(dropout), module=module)
    if modules_to_save:
        cfg['modules_to_save'] = list(modules_to_save)
    return cfg


def linear_layer_names(language_model: nn.Module, exclude: Sequence[str] = ('lm_head', 'output_layer')) -> list[str]:
    """xtuner's ``find_all_linear_names`` as full names: every ``nn.Linear`` whose last name part is not
    excluded, skipping layers inside peft wrappers (their ``base_layer`` / ``lora_A`` / ``lora_B``)."""
    peft_prefixes = [n for n, m in language_model.named_modules() if n and type(m).__module__.startswith('peft.')]
    names = []
    for name, mod in language_model.named_modules():
        if name.split('.')[-1] in exclude or any(name.startswith(p + '.') for p in peft_prefixes):
            continue
        if isinstance(mod, nn.Linear) or (name in peft_prefixes and hasattr(mod, 'lora_A')):
            names.append(name)
    return names


def verify_sa2va_lora(language_model: nn.Module, adapter_name: str = 'default') -> int:
    """Raise unless every linear layer of the LLM but ``lm_head`` holds LoRA ``A``/``B`` of ``adapter_name``
    and every decoder layer has all of q/k/v/o/gate/up/down_proj wrapped; returns the number of LoRA layers."""
    wrapped, plain = [], []
    for name in linear_layer_names(language_model):
        mod = language_model.get_submodule(name)
        lora_a, lora_b = getattr(mod, 'lora_A', None), getattr(mod, 'lora_B', None)
        ok = lora_a is not None and lora_b is not None and adapter_name in lora_a and adapter_name in lora_b
        (wrapped if ok else plain).append(name)
    if plain:
        raise ValueError(f'LoRA missing on {len(plain)} linear layers: {plain[:6]}{" ..." if len(plain) > 6 else ""}')
    per_layer: dict[str, set[str]] = {}
    for name in wrapped:
        parent, _, leaf = name.rpartition('.')
        per_layer.setdefault(parent.rpartition('.')[0], set()).add(leaf)
    incomplete = {k: sorted(set(SA2VA_LORA_TARGETS) - v) for k, v in per_layer.items()
                  if set(SA2VA_LORA_TARGETS) - v}
    if not per_layer or incomplete:
        raise ValueError(f'LoRA targets {SA2VA_LORA_TARGETS} not all wrapped: missing {incomplete or "all"}')
    return len(wrapped)


# ---------------------------------------------------------------------------------------------- generation
def _forward_kwargs(model: nn.Module) -> tuple[str, str | None]:
    """Names of the cache and logits-slicing arguments (transformers 5.24 renamed past_key_values → cache)."""
    params = inspect.signature(model.forward).parameters
    cache = 'cache' if 'cache' in params else 'past_key_values'
    keep = 'logits_to_keep' if 'logits_to_keep' in params else (
        'num_logits_to_keep' if 'num_logits_to_keep' in params else None)
    return cache, keep


def _new_cache(model: nn.Module) -> Any:
    from transformers import DynamicCache

    if 'config' in inspect.signature(DynamicCache.__init__).parameters:
        return DynamicCache(config=model.config)
    return DynamicCache()


@torch.no_grad()
def greedy_generate_with_seg(language_model: nn.Module, inputs_embeds: Tensor, attention_mask: Tensor | None,
                             seg_token_id: int, eos_token_ids: int | Sequence[int | Sequence[int]],
                             max_new_tokens: int = 2048, pad_token_id: int | None = None,
                             final_seg: str = 'drop') -> SegGeneration:
    """Greedy decoding with a KV cache from prompt embeddings; collects the ``[SEG]`` hidden states.

    Call it with the model in ``eval()`` (LoRA / attention dropout would otherwise act); the mode is not changed.

    Args:
        inputs_embeds: (B, L, H) prompt embeddings (image tokens already placed). Batches must be LEFT-padded.
        attention_mask: (B, L), 1 = real token; None = all real.
        eos_token_ids: ids (or id sequences, for stop words the tokenizer splits) that end a sample; the stop
            token is kept in ``sequences``. Defaults of ``predict_forward``: eos id + template stop words
            (``language.stop_token_ids``); ``max_new_tokens`` 2048.
        pad_token_id: fills ``sequences`` after a sample stopped; None = the smallest single stop id.
        final_seg: a ``[SEG]`` that is the last token before ``max_new_tokens`` runs out is never fed back;
            ``'drop'`` gives it no state (as Sa2VA's ``get_seg_hidden_states``), ``'forward'`` runs one more
            step to compute it (then every ``[SEG]`` in ``sequences`` has a state).

    The state of a generated token is the last layer's (``hidden_states[-1]``, after the final norm) at the
    step where that token is the input, i.e. exactly the training path's ``hidden_states[-1][input_ids ==
    seg]``. An own loop instead of ``generate``: same ids, 0.89-0.93x the time of ``generate`` on the tiny
    model (``benchmarks/bench_sa2va_generation.py``, docs/benchmarks.md), keeps only the ``[SEG]`` states instead of
    every layer of every step, and needs no ``generation_config``.
    """
    if inputs_embeds.dim() != 3:
        raise ValueError(f'inputs_embeds must be (B, L, H), got {tuple(inputs_embeds.shape)}')
    if final_seg not in ('drop', 'forward'):
        raise ValueError(f"final_seg must be 'drop' or 'forward', got {final_seg!r}")
    if max_new_tokens < 1:
        raise ValueError(f'max_new_tokens must be >= 1, got {max_new_tokens}')
    b, length, _ = inputs_embeds.shape
    device = inputs_embeds.device
    mask = torch.ones(b, length, dtype=torch.long, device=device) if attention_mask is None \
        else attention_mask.to(device=device, dtype=torch.long)
    if mask.shape != (b, length):
        raise ValueError(f'attention_mask {tuple(mask.shape)} does not match inputs_embeds {(b, length)}')
    if (mask[:, 1:] < mask[:, :-1]).any() or (mask[:, -1] == 0).any():
        raise ValueError('greedy_generate_with_seg: the prompt batch must be left-padded (mask 0..0 1..1)')
    single, multi = _split_stops(eos_token_ids)
    pad = int(pad_token_id) if pad_token_id is not None else (min(single) if single else 0)
    cache_key, keep_key = _forward_kwargs(language_model)
    cache = _new_cache(language_model)

    def step(hidden: bool, **inputs: Any) -> Any:
        kw = {cache_key: cache, 'use_cache': True, 'output_hidden_states': hidden, 'return_dict': True}
        if keep_key is not None:
            kw[keep_key] = 1
        return language_model(**inputs, **kw)

    # Unpadded prompts pass no mask and no positions: the model's own causal path (positions = cache length +
    # arange), which skips building a mask every step. Left-padded ones need both.
    padded = bool((mask == 0).any())
    full_mask = torch.cat([mask, mask.new_ones(b, max_new_tokens + 1)], dim=1) if padded else None
    positions = (mask.cumsum(-1) - 1).clamp(min=0) if padded else None
    out = step(False, inputs_embeds=inputs_embeds, attention_mask=full_mask[:, :length] if padded else None,
               position_ids=positions)
    next_pos = positions[:, -1:] + 1 if padded else None
    tokens = out.logits[:, -1].argmax(-1)
    generated: list[Tensor] = []
    seg_states: list[list[Tensor]] = [[] for _ in range(b)]
    done = torch.zeros(b, dtype=torch.bool, device=device)
    pad_col = torch.full_like(tokens, pad)
    for t in range(max_new_tokens):
        tok = torch.where(done, pad_col, tokens)
        generated.append(tok)
        live = ~done
        done = done | _stopped(generated, single, multi)
        last = t == max_new_tokens - 1
        seg_fed = live & ~done & (tok == seg_token_id)  # [SEG] inputs of running samples: keep their state
        all_done, any_seg = torch.stack([done.all(), seg_fed.any()]).tolist()  # one device sync per step
        if all_done or (last and (final_seg == 'drop' or not any_seg)):
            break
        # all layers' states are only collected on steps that feed a [SEG]
        out = step(any_seg, input_ids=tok[:, None], attention_mask=full_mask[:, :length + t + 1] if padded else None,
                   position_ids=next_pos)
        if any_seg:
            for i in torch.nonzero(seg_fed).flatten().tolist():
                seg_states[i].append(out.hidden_states[-1][i, -1])
        if last:
            break
        tokens = out.logits[:, -1].argmax(-1)
        if padded:
            next_pos = next_pos + 1
    # the LLM's hidden size is its input embedding size
    states = [torch.stack(s) if s else inputs_embeds.new_zeros(0, inputs_embeds.shape[-1]) for s in seg_states]
    return SegGeneration(torch.stack(generated, dim=1), states)


def _split_stops(eos_token_ids: int | Sequence[int | Sequence[int]]) -> tuple[set[int], list[tuple[int, ...]]]:
    """Single stop ids and multi-token stop sequences (a 1-long sequence counts as a single id)."""
    rules = [eos_token_ids] if isinstance(eos_token_ids, int) else list(eos_token_ids)
    if not rules:
        raise ValueError('eos_token_ids is empty: generation would only stop at max_new_tokens; pass the '
                         'template stop ids (language.stop_token_ids)')
    single: set[int] = set()
    multi: list[tuple[int, ...]] = []
    for rule in rules:
        seq = (int(rule),) if isinstance(rule, int) or (isinstance(rule, Tensor) and rule.dim() == 0) \
            else tuple(int(x) for x in rule)
        if not seq:
            raise ValueError('eos_token_ids: an empty stop sequence')
        if len(seq) == 1:
            single.add(seq[0])
        else:
            multi.append(seq)
    return single, multi


def _stopped(generated: list[Tensor], single: set[int], multi: list[tuple[int, ...]]) -> Tensor:
    last = generated[-1]
    hit = torch.zeros_like(last, dtype=torch.bool)
    for s in single:
        hit |= last == s
    for seq in multi:
        if len(generated) >= len(seq):
            tail = torch.stack(generated[-len(seq):], dim=1)
            hit |= (tail == torch.tensor(seq, device=tail.device)).all(dim=1)
    return hit
