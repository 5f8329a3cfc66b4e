"""Frozen open_clip CLIP used as FC-CLIP's single backbone (ConvNeXt or modified-ResNet visual tower).

Why one frozen CLIP: FC-CLIP feeds the *same* frozen CLIP both to the mask generator (multi-scale
``res2..res5``) and to the out-of-vocabulary classifier (``clip_vis_dense`` pooled inside predicted masks),
so CLIP's open-vocabulary alignment is never damaged by segmentation training. The module therefore
freezes every CLIP parameter, stays in eval mode whatever the parent does, and runs under ``no_grad``.

Weights: a released open_clip tag (``laion2b_s29b_b131k_ft_soup`` for ``convnext_large_d_320``,
``openai`` for the RN models) is resolved from the *local* open_clip / Hugging Face cache only, or a
local file is loaded. Nothing is downloaded unless ``allow_download=True``; when nothing is available
the constructor raises with the tag/path and how to fetch it, unless ``allow_random_init=True`` (tests,
toy CPU configs), in which case it warns loudly and keeps random weights.

A ``model_cfg`` dict (open_clip's ``{'embed_dim', 'vision_cfg', 'text_cfg'}`` schema) is registered with
open_clip's own config table so tiny random CLIPs can be built for tests; two tiny presets
(``ovseg-tiny-convnext``, ``ovseg-tiny-resnet``) are registered at import.
"""
from __future__ import annotations

import copy
import hashlib
import json
import logging
import math
import os
import uuid
import warnings
from typing import Any

import open_clip
import open_clip.factory as oc_factory
import torch
import torch.nn.functional as F
from huggingface_hub import try_to_load_from_cache
from mmengine.logging import print_log
from mmengine.model import BaseModule
from open_clip.constants import HF_SAFE_WEIGHTS_NAME, HF_WEIGHTS_NAME
from open_clip.pretrained import get_pretrained_cfg
from torch import Tensor, nn

from ovseg.models.layers import mask_pooling
from ovseg.registry import MODELS

__all__ = [
    'CLIPBackbone', 'TINY_CLIP_CONFIGS', 'register_open_clip_model_config', 'resolve_local_pretrained',
    'mask_attention_pool', 'required_quick_gelu',
]

#: Tiny random-init CLIP architectures (milliseconds on CPU) for tests and toy configs. Same module layout
#: as the real models (timm ConvNeXt trunk + MLP projection; open_clip ModifiedResNet + attention pool),
#: so every code path (features, out-of-vocab head, text encoder) is exercised.
TINY_CLIP_CONFIGS: dict[str, dict[str, Any]] = {
    'ovseg-tiny-convnext': {
        'embed_dim': 64,
        'vision_cfg': {
            'timm_model_name': 'convnext_atto',
            'timm_model_pretrained': False,
            'timm_pool': '',
            'timm_proj': 'mlp',
            'timm_drop': 0.0,
            'timm_drop_path': 0.0,
            'image_size': 64,
        },
        'text_cfg': {'context_length': 77, 'vocab_size': 49408, 'width': 64, 'heads': 4, 'layers': 2},
    },
    'ovseg-tiny-resnet': {
        'embed_dim': 64,
        'vision_cfg': {'image_size': 64, 'layers': [1, 1, 1, 1], 'width': 16, 'head_width': 64,
                       'patch_size': None},
        'text_cfg': {'context_length': 77, 'vocab_size': 49408, 'width': 64, 'heads': 4, 'layers': 2},
    },
}


def register_open_clip_model_config(name: str, model_cfg: dict[str, Any], overwrite: bool = False) -> str:
    """Add ``model_cfg`` to open_clip's architecture table under ``name`` (its custom-config mechanism).

    open_clip's ``add_model_config`` only accepts json files; writing into
    ``open_clip.factory._MODEL_CONFIGS`` is what it does after reading one, and a later rescan keeps the
    entry. Registering the same config twice is a no-op; a *different* config under an existing name
    raises unless ``overwrite``.
    """
    missing = [k for k in ('embed_dim', 'vision_cfg', 'text_cfg') if k not in model_cfg]
    if missing:
        raise ValueError(f'open_clip model_cfg for {name!r} lacks keys {missing}')
    existing = oc_factory._MODEL_CONFIGS.get(name)
    if existing is not None and existing != model_cfg and not overwrite:
        raise ValueError(f'open_clip already has a different model config named {name!r}; '
                         'pick another name or pass overwrite=True')
    oc_factory._MODEL_CONFIGS[name] = copy.deepcopy(model_cfg)
    return name


for _name, _cfg in TINY_CLIP_CONFIGS.items():
    register_open_clip_model_config(_name, _cfg, overwrite=True)


def _cfg_hash(cfg: dict[str, Any]) -> str:
    return hashlib.sha1(json.dumps(cfg, sort_keys=True).encode()).hexdigest()[:10]


def resolve_local_pretrained(
        model_name: str, tag: str,
        cache_dir: str | None = None) -> tuple[str | None, dict[str, Any], list[str]]:
    """Find the file of an open_clip pretrained ``tag`` in the local caches, without any network access.

    Looks where open_clip's own download would have put it: the Hugging Face hub cache (``cache_dir`` or
    ``HF_HUB_CACHE``/``HF_HOME``) for ``hf_hub`` entries (safetensors first, as open_clip does) and
    ``cache_dir`` or ``~/.cache/clip`` for URL entries.
    Returns ``(path or None, tag config, places searched)``.
    """
    cfg = get_pretrained_cfg(model_name, tag)
    searched: list[str] = []
    if not cfg:
        return None, {}, searched
    if cfg.get('file'):
        searched.append(cfg['file'])
        if os.path.isfile(cfg['file']):
            return cfg['file'], cfg, searched
    hf_hub = cfg.get('hf_hub', '')
    if hf_hub:
        repo_id, filename = os.path.split(hf_hub)
        names = [HF_SAFE_WEIGHTS_NAME, HF_WEIGHTS_NAME] if not filename else (
            [filename[:-4] + '.safetensors', filename]
            if filename.endswith(('.bin', '.pth')) else [filename])
        for fname in names:
            searched.append(f'hf-hub:{repo_id}/{fname} (cache_dir={cache_dir or "HF default"})')
            found = try_to_load_from_cache(repo_id, fname, cache_dir=cache_dir)
            if isinstance(found, str) and os.path.isfile(found):
                return found, cfg, searched
    url = cfg.get('url', '')
    if url:
        target = os.path.join(cache_dir or os.path.expanduser('~/.cache/clip'), os.path.basename(url))
        searched.append(target)
        if os.path.isfile(target):
            return target, cfg, searched
    return None, cfg, searched


def required_quick_gelu(arch_name: str, tag_cfg: dict[str, Any] | None = None, who: str = 'CLIP') -> bool:
    """Whether the weights need open_clip's QuickGELU (OpenAI-trained CLIPs do; plain GELU shifts every feature).

    With an open_clip tag config: its ``quick_gelu``. For a local file, the value all of the architecture's
    open_clip tags agree on (``RN50``/``RN101``/``RN50x4``/``RN50x16``/``RN50x64``: QuickGELU, ``openai`` /
    ``yfcc15m`` / ``cc12m`` alike; ``convnext_large_d_320``: GELU); an architecture without tags (custom, tiny)
    uses GELU. Raises when the tags disagree (``ViT-B-32``: ``openai`` QuickGELU, ``laion2b_*`` GELU): the file
    alone does not say which, so ``force_quick_gelu`` must.
    """
    if tag_cfg:
        return bool(tag_cfg.get('quick_gelu', False))
    tags = open_clip.list_pretrained_tags_by_model(arch_name)
    values = {t: bool(get_pretrained_cfg(arch_name, t).get('quick_gelu', False)) for t in tags}
    if len(set(values.values())) > 1:
        quick = sorted(t for t, v in values.items() if v)
        raise ValueError(f'{who}: cannot tell whether local weights for {arch_name!r} need QuickGELU: its open_clip '
                         f'tags disagree (QuickGELU: {quick}; GELU: the others). Set force_quick_gelu=True for '
                         'OpenAI-trained weights, False otherwise.')
    return next(iter(values.values()), False)


def mask_attention_pool(attnpool: nn.Module, dense: Tensor, masks: Tensor) -> Tensor:
    """Re-run CLIP's ``AttentionPool2d`` once per mask, attending only to the pixels inside the mask.

    This is FC-CLIP's out-of-vocabulary path for ResNet CLIPs (their dense features are not aligned with
    text before the attention pool, so average mask-pooling would not work). The query is CLIP's usual
    global-mean token; keys/values are the dense features plus the positional embedding bilinearly resized
    to the feature grid; the attention mask hides pixels outside the (binarized ``> 0``) mask.

    One deliberate difference from the official code: a query whose mask is empty would attend to nothing
    and give NaN there; we let such rows attend everywhere instead (the global CLIP embedding). FC-CLIP's
    ``ensemble_on_valid_mask`` ignores those queries anyway, and NaNs would otherwise poison the ensemble.

    Args:
        attnpool: open_clip ``ModifiedResNet.attnpool``.
        dense: B×C×H×W ``res5`` features.
        masks: B×Q×h×w mask logits (resized bilinearly to H×W if needed).
    Returns:
        B×Q×D CLIP image embeddings (un-normalized), D = ``attnpool.c_proj.out_features``.
    """
    batch, channel, height, width = dense.shape
    if masks.shape[-2:] != (height, width):
        masks = F.interpolate(masks, size=(height, width), mode='bilinear', align_corners=False)
    num_masks = masks.shape[1]
    num_heads = attnpool.num_heads

    pos = attnpool.positional_embedding.to(dense.dtype)  # (1 + S*S) × C
    spatial = pos[1:]
    orig = int(math.sqrt(spatial.shape[0]))
    spatial = spatial.t().reshape(1, channel, orig, orig)
    spatial = F.interpolate(spatial, size=(height, width), mode='bilinear', align_corners=False)
    spatial = spatial.permute(2, 3, 0, 1).reshape(height * width, 1, channel)

    x = dense.reshape(batch, channel, height * width).permute(2, 0, 1)  # (HW)×B×C
    key_value = x + spatial
    query = x.mean(0, keepdim=True) + pos[:1, None, :]  # 1×B×C
    query = query.repeat_interleave(num_masks, dim=0)  # Q×B×C

    inside = (masks.reshape(batch, num_masks, height * width) > 0)
    empty = ~inside.any(-1, keepdim=True)
    attn_mask = ~(inside | empty)  # True = not allowed to attend
    attn_mask = attn_mask.unsqueeze(1).expand(-1, num_heads, -1, -1)
    attn_mask = attn_mask.reshape(batch * num_heads, num_masks, height * width)

    out = F.multi_head_attention_forward(
        query=query, key=key_value, value=key_value,
        embed_dim_to_check=key_value.shape[-1],
        num_heads=num_heads,
        q_proj_weight=attnpool.q_proj.weight,
        k_proj_weight=attnpool.k_proj.weight,
        v_proj_weight=attnpool.v_proj.weight,
        in_proj_weight=None,
        in_proj_bias=torch.cat([attnpool.q_proj.bias, attnpool.k_proj.bias, attnpool.v_proj.bias]),
        bias_k=None, bias_v=None, add_zero_attn=False, dropout_p=0.0,
        out_proj_weight=attnpool.c_proj.weight, out_proj_bias=attnpool.c_proj.bias,
        use_separate_proj_weight=True, training=False, need_weights=False, attn_mask=attn_mask,
    )[0]
    return out.permute(1, 0, 2)  # B×Q×D


@MODELS.register_module()
class CLIPBackbone(BaseModule):
    """Frozen open_clip CLIP exposing FC-CLIP's multi-scale features and region embeddings (visual side).

    Args:
        model_name: open_clip architecture name (``convnext_large_d_320``, ``convnext_base_w_320``,
            ``RN50``, ``RN101``, ``RN50x4``, ``RN50x16``, ``RN50x64``, the tiny presets, ...).
        pretrained: open_clip tag (resolved from the local cache only) or a local checkpoint path;
            ``None``/``''`` means no CLIP weights (requires ``allow_random_init``).
        cache_dir: open_clip/HF cache directory to look in (and to download into if ``allow_download``).
        model_cfg: custom open_clip architecture dict; registered with open_clip under
            ``model_name`` if that name is free, else under ``<model_name>-custom-<hash>``.
        allow_random_init: keep random weights (with a loud warning) when no weights are available.
        allow_download: let open_clip download the tag when it is not cached (needs network).
        precision: open_clip precision string (``fp32`` default).
        force_quick_gelu: build with QuickGELU (True) or GELU (False). ``None``: what the weights need
            (:func:`required_quick_gelu`): the tag's setting, for a local file the architecture's (OpenAI RN*
            files: QuickGELU), an error where that is ambiguous. OpenAI weights run with GELU would shift
            every text and image feature.

    The submodule is named ``clip_model`` so that state-dict keys are ``backbone.clip_model.*`` exactly
    as in the released FC-CLIP checkpoints.
    """

    def __init__(self,
                 model_name: str = 'convnext_large_d_320',
                 pretrained: str | None = 'laion2b_s29b_b131k_ft_soup',
                 cache_dir: str | None = None,
                 model_cfg: dict[str, Any] | None = None,
                 allow_random_init: bool = False,
                 allow_download: bool = False,
                 precision: str = 'fp32',
                 force_quick_gelu: bool | None = None,
                 init_cfg: dict | None = None) -> None:
        super().__init__(init_cfg=init_cfg)
        arch_name = model_name
        if model_cfg is not None:
            model_cfg = copy.deepcopy(dict(model_cfg))
            existing = oc_factory._MODEL_CONFIGS.get(model_name)
            if existing is not None and existing != model_cfg:
                arch_name = f'{model_name}-custom-{_cfg_hash(model_cfg)}'
            register_open_clip_model_config(arch_name, model_cfg, overwrite=True)
        elif arch_name not in oc_factory._MODEL_CONFIGS:
            raise ValueError(f'Unknown open_clip architecture {model_name!r}; pass model_cfg=... or one of '
                             f'{sorted(TINY_CLIP_CONFIGS)} / open_clip.list_models()')
        self.model_name = model_name
        self.arch_name = arch_name
        self.pretrained = pretrained or None
        self.cache_dir = cache_dir
        self.weights_loaded = False

        create_kwargs: dict[str, Any] = dict(precision=precision, pretrained_image=False,
                                             pretrained_text=False, cache_dir=cache_dir)
        ckpt, how = self._resolve_weights(arch_name, self.pretrained, cache_dir, allow_download)
        who = f'CLIPBackbone({model_name!r}, pretrained={self.pretrained!r})'
        if ckpt is None and how == 'download':
            self.quick_gelu = force_quick_gelu if force_quick_gelu is not None else required_quick_gelu(
                arch_name, get_pretrained_cfg(arch_name, self.pretrained), who)
            clip_model = open_clip.create_model(arch_name, pretrained=self.pretrained,
                                                force_quick_gelu=self.quick_gelu, **create_kwargs)
            self.weights_loaded = True
        elif ckpt is not None:
            tag_cfg = how if isinstance(how, dict) else {}  # {} for a local file
            self.quick_gelu = force_quick_gelu if force_quick_gelu is not None else required_quick_gelu(
                arch_name, tag_cfg, who)
            clip_model = open_clip.create_model(arch_name, pretrained=ckpt, force_quick_gelu=self.quick_gelu,
                                                **create_kwargs)
            self.weights_loaded = True
        else:
            self.quick_gelu = bool(force_quick_gelu)
            if not allow_random_init:
                raise FileNotFoundError(how)
            msg = (f'CLIPBackbone({model_name!r}): NO CLIP WEIGHTS LOADED, using RANDOM initialization '
                   f'({how}). Open-vocabulary results will be meaningless; '
                   'this is only for tests / toy runs.')
            warnings.warn(msg, UserWarning, stacklevel=2)
            print_log(msg, logger='current', level=logging.WARNING)
            clip_model = open_clip.create_model(arch_name, pretrained=None, force_quick_gelu=self.quick_gelu,
                                                **create_kwargs)
        self.clip_model = clip_model
        self.tokenizer = open_clip.get_tokenizer(arch_name)

        visual = clip_model.visual
        if hasattr(visual, 'trunk') and hasattr(visual.trunk, 'stages'):
            self.model_type = 'convnext'
            trunk = visual.trunk
            chs = [info['num_chs'] for info in trunk.feature_info]
            stem_ch = trunk.stem[0].out_channels if isinstance(trunk.stem, nn.Sequential) else chs[0]
            self.output_channels = {'stem': stem_ch, 'res2': chs[0], 'res3': chs[1], 'res4': chs[2],
                                    'res5': chs[3], 'clip_vis_dense': trunk.num_features}
            self.output_strides = {'stem': 4, 'res2': 4, 'res3': 8, 'res4': 16, 'res5': 32,
                                   'clip_vis_dense': 32}
        elif hasattr(visual, 'attnpool') and hasattr(visual, 'layer4'):
            self.model_type = 'resnet'
            width = visual.conv3.out_channels
            self.output_channels = {'stem': width, 'res2': width * 4, 'res3': width * 8, 'res4': width * 16,
                                    'res5': width * 32, 'clip_vis_dense': width * 32}
            self.output_strides = {'stem': 2, 'res2': 4, 'res3': 8, 'res4': 16, 'res5': 32,
                                   'clip_vis_dense': 32}
        else:
            raise NotImplementedError('CLIPBackbone supports ConvNeXt (timm) and ModifiedResNet visual '
                                      f'towers, got {type(visual).__name__} for {model_name!r}')

        # identity used by text-classifier caches: stable (disk-cacheable) only for real weights
        if self.weights_loaded:
            cfg_part = _cfg_hash(oc_factory._MODEL_CONFIGS[arch_name])
            self.model_identity = f'{arch_name}|{self.pretrained}|{cfg_part}'
            self.identity_is_stable = True
        else:
            self.model_identity = f'{arch_name}|random|{uuid.uuid4().hex}'
            self.identity_is_stable = False

        self._freeze()

    # ------------------------------------------------------------------ weights / modes
    @staticmethod
    def _resolve_weights(arch_name: str, pretrained: str | None, cache_dir: str | None,
                         allow_download: bool) -> tuple[str | None, str | dict[str, Any]]:
        """Return ``(local file, tag cfg)``, ``(None, 'download')`` or ``(None, error message)``."""
        if not pretrained:
            return None, ('pretrained=None: no CLIP weights requested. Set `pretrained` to an open_clip tag '
                          'or a local file, or allow_random_init=True for tests')
        if os.path.isfile(os.path.expanduser(pretrained)):
            return os.path.expanduser(pretrained), {}
        path, tag_cfg, searched = resolve_local_pretrained(arch_name, pretrained, cache_dir)
        if path is not None:
            return path, tag_cfg
        if not tag_cfg:
            known = open_clip.list_pretrained_tags_by_model(arch_name)
            return None, (f'CLIP weights {pretrained!r} for {arch_name!r}: not a local file and not an '
                          f'open_clip tag (known tags: {known}). Give a path to '
                          'an open_clip checkpoint, a tag, or allow_random_init=True for tests.')
        if allow_download:
            return None, 'download'
        return None, (
            f'CLIP weights for {arch_name!r} tag {pretrained!r} are not in the local cache (looked in: '
            f'{"; ".join(searched)}). Fetch them once on a machine with internet, e.g. '
            f'`python -c "import open_clip; open_clip.create_model('
            f'\'{arch_name}\', pretrained=\'{pretrained}\''
            f'{", cache_dir=" + repr(cache_dir) if cache_dir else ""})"` (or set HF_HOME / cache_dir to a '
            'directory holding them), pass pretrained=<local .bin/.safetensors path>, '
            'set allow_download=True, or allow_random_init=True for tests.')

    def _freeze(self) -> None:
        for p in self.clip_model.parameters():
            p.requires_grad_(False)
        super().train(False)

    def train(self, mode: bool = True) -> 'CLIPBackbone':
        """Ignore ``mode``: frozen CLIP (BatchNorm stats, dropout) must always run in eval mode."""
        return super().train(False)

    def init_weights(self) -> None:
        """No-op: weights come from open_clip / the converted checkpoint, never from mmengine initializers."""

    # ------------------------------------------------------------------ properties
    @property
    def embed_dim(self) -> int:
        """Dimension of the joint CLIP embedding space (text projection output)."""
        return int(self.clip_model.text_projection.shape[-1])

    @property
    def clip_logit_scale(self) -> Tensor:
        """Frozen CLIP temperature as used by FC-CLIP: ``clamp(exp(logit_scale), max=100)`` (a 0-d tensor)."""
        return torch.clamp(self.clip_model.logit_scale.detach().exp(), max=100.0)

    @property
    def device(self) -> torch.device:
        return next(self.clip_model.parameters()).device

    @property
    def is_convnext(self) -> bool:
        return self.model_type == 'convnext'

    # ------------------------------------------------------------------ visual
    def forward(self, x: Tensor) -> dict[str, Tensor]:
        """CLIP-normalized B×3×H×W images → ``stem, res2..res5, clip_vis_dense`` feature maps."""
        if self.training or self.clip_model.training:  # train() keeps it in eval; guard direct flag changes
            self.train(False)
        with torch.no_grad():
            if self.model_type == 'convnext':
                return self._features_convnext(x)
            return self._features_resnet(x)

    def _features_convnext(self, x: Tensor) -> dict[str, Tensor]:
        trunk = self.clip_model.visual.trunk
        out: dict[str, Tensor] = {}
        x = trunk.stem(x)
        out['stem'] = x.contiguous()
        for i in range(4):
            x = trunk.stages[i](x)
            out[f'res{i + 2}'] = x.contiguous()
        out['clip_vis_dense'] = trunk.norm_pre(x).contiguous()
        return out

    def _features_resnet(self, x: Tensor) -> dict[str, Tensor]:
        v = self.clip_model.visual
        out: dict[str, Tensor] = {}
        x = v.act1(v.bn1(v.conv1(x)))
        x = v.act2(v.bn2(v.conv2(x)))
        x = v.act3(v.bn3(v.conv3(x)))
        out['stem'] = x.contiguous()
        x = v.avgpool(x)
        for i in range(1, 5):
            x = getattr(v, f'layer{i}')(x)
            out[f'res{i + 1}'] = x.contiguous()
        out['clip_vis_dense'] = out['res5']
        return out

    def mask_embeddings(self, clip_vis_dense: Tensor, mask_logits: Tensor) -> Tensor:
        """CLIP image embedding of each masked region (FC-CLIP's out-of-vocabulary branch) → B×Q×D, un-normalized.

        ConvNeXt: mask-pool ``clip_vis_dense`` (B×C×H×W) inside each mask (B×Q×h×w logits, binarized at 0) and run
        CLIP's head (``trunk.head`` norm, then the ``visual.head`` projection). ResNet: re-run the attention pool
        restricted to each mask (:func:`mask_attention_pool`); dense ResNet features are not text-aligned before
        the pool, so average pooling would not work there.
        """
        with torch.no_grad():
            if self.model_type == 'convnext':
                pooled = mask_pooling(clip_vis_dense, mask_logits)
                b, q, c = pooled.shape
                y = self.clip_model.visual.trunk.head(pooled.reshape(b * q, c, 1, 1))
                y = self.clip_model.visual.head(y)
                return y.reshape(b, q, y.shape[-1])
            return mask_attention_pool(self.clip_model.visual.attnpool, clip_vis_dense, mask_logits)

    def extra_repr(self) -> str:
        return (f'model_name={self.model_name!r}, pretrained={self.pretrained!r}, type={self.model_type}, '
                f'weights_loaded={self.weights_loaded}')
