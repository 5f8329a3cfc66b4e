"""CLIP text side of an open-vocabulary segmentor: class names → a per-synonym text classifier.

The segmentor owns this encoder beside its visual backbone and calls it for each vocabulary. FC-CLIP's recipe
(``fcclip/fcclip.py``): every (synonym × template) prompt is encoded by the frozen CLIP text tower in chunks of 128
prompts (bounded memory for large vocabularies), each embedding is L2-normalized, the 14 template embeddings of one
synonym are averaged and re-normalized. Synonyms of a class are *not* merged here: scoring takes the max over them
(``get_classification_logits``), so the encoder returns the per-synonym matrix and the synonyms per class.

FC-CLIP uses one CLIP for both sides, so the encoder reads the text tower of the CLIP model the backbone loaded
(``clip`` argument: an object with ``clip_model`` and ``tokenizer``) without registering it a second time — the
state-dict keys stay ``backbone.clip_model.*`` as in the released checkpoints. Results are cached per vocabulary
(in memory, and on disk for real weights), keyed by the CLIP weights' identity and a fingerprint of the text
tower's tensors, so switching vocabularies (train / several test sets) never re-encodes.
"""
from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from ovseg.registry import MODELS
from ovseg.vocabulary import ClassEntry, normalize_vocabulary

#: The 14 ViLD-style prompt templates used by FC-CLIP (``VILD_PROMPT`` in ``fcclip/fcclip.py``), verbatim.
VILD_PROMPT: tuple[str, ...] = (
    'a photo of a {}.',
    'This is a photo of a {}',
    'There is a {} in the scene',
    'There is the {} in the scene',
    'a photo of a {} in the scene',
    'a photo of a small {}.',
    'a photo of a medium {}.',
    'a photo of a large {}.',
    'This is a photo of a small {}.',
    'This is a photo of a medium {}.',
    'This is a photo of a large {}.',
    'There is a small {} in the scene.',
    'There is a medium {} in the scene.',
    'There is a large {} in the scene.',
)


@MODELS.register_module()
class CLIPTextEncoder:
    """Per-synonym CLIP text classifier of a vocabulary, with caching.

    Args:
        clip: the owner of the CLIP model — ``clip_model`` (open_clip model), ``tokenizer`` and optionally
            ``model_identity`` / ``identity_is_stable`` (e.g. :class:`~ovseg.models.backbones.CLIPBackbone`).
            The segmentor passes its backbone.
        templates: prompt templates with one ``{}``; default: the 14 :data:`VILD_PROMPT` templates.
        chunk_size: prompts encoded per text-tower call (FC-CLIP: 128).
        cache_dir: optional directory for an on-disk cache (only for real weights, ``identity_is_stable``).
        max_memory_entries: in-memory cache size (oldest entries evicted first).

    ``encoder(vocabulary) -> (classifier S×D normalized, synonyms per class)``.
    """

    def __init__(self, clip: Any, templates: Sequence[str] | None = None, chunk_size: int = 128,
                 cache_dir: str | None = None, max_memory_entries: int = 16) -> None:
        for attr in ('clip_model', 'tokenizer'):
            if not hasattr(clip, attr):
                raise TypeError(f'CLIPTextEncoder needs an owner with `{attr}` (e.g. a CLIPBackbone), got '
                                f'{type(clip).__name__}')
        self.clip = clip
        self.templates: tuple[str, ...] = tuple(templates) if templates is not None else VILD_PROMPT
        if not self.templates:
            raise ValueError('At least one prompt template is required')
        for t in self.templates:
            if t.count('{}') != 1:
                raise ValueError(f'Prompt template {t!r} must contain exactly one "{{}}"')
        if chunk_size < 1:
            raise ValueError(f'chunk_size must be >= 1, got {chunk_size}')
        self.chunk_size = int(chunk_size)
        self.cache_dir = cache_dir
        self.max_memory_entries = int(max_memory_entries)
        self._memory: dict[Any, tuple[Tensor, list[int]]] = {}
        self.num_encode_calls = 0  # prompt batches sent to the text tower (observability / tests)

    # -------------------------------------------------------------- text tower
    @property
    def device(self) -> torch.device:
        return next(self.clip.clip_model.parameters()).device

    @property
    def embed_dim(self) -> int:
        """Width of the joint embedding space (text projection output)."""
        return int(self.clip.clip_model.text_projection.shape[-1])

    def encode_text(self, texts: Sequence[str]) -> Tensor:
        """Prompts → N×D **un-normalized** embeddings of the frozen text tower (as open_clip / FC-CLIP)."""
        if isinstance(texts, str):
            texts = [texts]
        model = self.clip.clip_model
        tokens = self.clip.tokenizer(list(texts)).to(self.device)
        was_training = model.training
        model.eval()
        with torch.no_grad():
            out = model.encode_text(tokens, normalize=False)
        model.train(was_training)
        return out

    def text_weights_token(self) -> tuple[int, ...]:
        """Cheap fingerprint that changes when text-tower tensors are replaced or modified in place.

        ``load_state_dict`` copies into parameters in place, which bumps each tensor's version counter, so a cached
        classifier is recomputed after a checkpoint overwrites the text tower.
        """
        m = self.clip.clip_model
        tensors = [m.token_embedding.weight, m.positional_embedding, m.ln_final.weight, m.logit_scale]
        if isinstance(m.text_projection, Tensor):
            tensors.append(m.text_projection)
        tensors += list(m.transformer.parameters())
        return tuple(getattr(t, '_version', 0) for t in tensors) + (tensors[0].data_ptr(),)

    # -------------------------------------------------------------- FC-CLIP recipe
    def encode(self, classes: list[tuple[str, ...]]) -> tuple[Tensor, list[int]]:
        """Uncached recipe on validated ``classes``; returns (S×D normalized, synonyms per class)."""
        synonyms = [s for syns in classes for s in syns]
        prompts = [t.format(s) for s in synonyms for t in self.templates]
        feats = []
        for start in range(0, len(prompts), self.chunk_size):
            self.num_encode_calls += 1
            feats.append(self.encode_text(prompts[start:start + self.chunk_size]).detach().float())
        emb = F.normalize(torch.cat(feats, dim=0), dim=-1)
        emb = emb.reshape(len(synonyms), len(self.templates), emb.shape[-1]).mean(dim=1)
        return F.normalize(emb, dim=-1), [len(syns) for syns in classes]

    # -------------------------------------------------------------- caching
    def _identity(self) -> str:
        return getattr(self.clip, 'model_identity', None) or f'object-{id(self.clip)}'

    def _disk_path(self, classes: list[tuple[str, ...]]) -> str | None:
        if not self.cache_dir or not getattr(self.clip, 'identity_is_stable', False):
            return None
        payload = json.dumps({'model': self._identity(), 'templates': list(self.templates),
                              'vocabulary': [list(c) for c in classes]}, sort_keys=True)
        digest = hashlib.sha256(payload.encode()).hexdigest()[:24]
        return os.path.join(self.cache_dir, f'text_classifier_{digest}.pt')

    def __call__(self, vocabulary: Sequence[ClassEntry]) -> tuple[Tensor, list[int]]:
        classes = normalize_vocabulary(vocabulary)
        key = (self._identity(), self.text_weights_token(), self.templates, tuple(classes))
        hit = self._memory.get(key)
        if hit is None:
            path = self._disk_path(classes)
            if path is not None and os.path.isfile(path):
                data = torch.load(path, map_location='cpu', weights_only=True)
                hit = (data['classifier'], [int(n) for n in data['num_synonyms']])
            else:
                hit = self.encode(classes)
                if path is not None:
                    os.makedirs(self.cache_dir, exist_ok=True)
                    tmp = f'{path}.tmp{os.getpid()}'
                    torch.save({'classifier': hit[0].cpu(), 'num_synonyms': hit[1]}, tmp)
                    os.replace(tmp, path)
            if len(self._memory) >= self.max_memory_entries:
                self._memory.pop(next(iter(self._memory)))
            self._memory[key] = hit
        emb, nums = hit
        device = self.device
        if emb.device != device:
            emb = emb.to(device)
            self._memory[key] = (emb, nums)
        return emb, list(nums)

    def clear_cache(self) -> None:
        self._memory.clear()
