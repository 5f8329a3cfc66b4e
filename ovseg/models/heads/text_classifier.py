"""Open-vocabulary text classifier: FC-CLIP's ViLD-template ensemble over class synonyms, with caching.

Recipe (``fcclip/fcclip.py``): every (synonym × template) prompt is encoded by the frozen CLIP text tower
in chunks of 128 prompts (to bound memory for large vocabularies), each embedding is L2-normalized, the 14
template embeddings of one synonym are averaged and the average is re-normalized. Synonyms of a class are
*not* merged here: scoring takes the max over them (:func:`ovseg.models.heads.get_classification_logits`),
so the builder returns the per-synonym matrix and the number of synonyms of each class.

The official code re-encodes the vocabulary lazily once per split; here the result is cached by
(model identity, text-weights fingerprint, templates, vocabulary) so changing vocabularies back and forth
(train/test, several test sets) never re-encodes, with an optional on-disk cache for real CLIP weights.
"""
from __future__ import annotations

import hashlib
import json
import os
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from torch import Tensor

from ovseg.registry import MODELS

__all__ = ['VILD_PROMPT', 'TextClassifierBuilder', 'OpenVocabTextEncoder', 'normalize_vocabulary',
           'append_void_classifier']

#: The 14 ViLD-style prompt templates used by FC-CLIP (``VILD_PROMPT`` in ``fcclip/fcclip.py``), verbatim.
VILD_PROMPT: Tuple[str, ...] = (
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

Vocabulary = Sequence[Union[str, Sequence[str]]]


def normalize_vocabulary(vocabulary: Vocabulary) -> List[Tuple[str, ...]]:
    """Turn a vocabulary into a list of synonym tuples and validate it.

    Each class is either a list of synonyms (``metainfo['class_synonyms']`` style) or one string with
    comma-separated synonyms (FC-CLIP ``*_with_prompt_eng.txt`` style, ``', '`` treated as ``','``).
    Synonyms are stripped. Raises ``ValueError`` for an empty vocabulary, a class without synonyms, an
    empty synonym and duplicate class entries (identical synonym lists up to case/whitespace): two
    identical rows could never be told apart, which always signals a broken vocabulary file.
    """
    if vocabulary is None or len(vocabulary) == 0:
        raise ValueError('Empty vocabulary: an open-vocabulary classifier needs at least one class')
    classes: List[Tuple[str, ...]] = []
    seen: Dict[Tuple[str, ...], int] = {}
    for idx, entry in enumerate(vocabulary):
        if isinstance(entry, str):
            syns = entry.replace(', ', ',').split(',')
        else:
            syns = list(entry)
        if len(syns) == 0:
            raise ValueError(f'Vocabulary class {idx} has no names')
        clean = []
        for s in syns:
            if not isinstance(s, str):
                raise ValueError(f'Vocabulary class {idx}: names must be strings, got {type(s).__name__}')
            s = s.strip()
            if not s:
                raise ValueError(f'Vocabulary class {idx} ({entry!r}) contains an empty name')
            clean.append(s)
        key = tuple(s.lower() for s in clean)
        if key in seen:
            raise ValueError(f'Duplicate vocabulary entry: class {idx} {clean} repeats class {seen[key]}')
        seen[key] = idx
        classes.append(tuple(clean))
    return classes


def append_void_classifier(text_classifier: Tensor, void_embedding: Tensor) -> Tensor:
    """Append the L2-normalized learnable void embedding (1×D, ``nn.Embedding(1, D).weight``) as last row.

    FC-CLIP's void class is a learnable vector scored like any other class; keeping it as the last row is
    the convention ``get_classification_logits`` relies on (last column = void).
    """
    void = F.normalize(void_embedding.reshape(1, -1), dim=-1).to(text_classifier)
    return torch.cat([text_classifier, void], dim=0)


@MODELS.register_module()
class TextClassifierBuilder:
    """Builds (and caches) the per-synonym CLIP text classifier for a vocabulary.

    Args:
        templates: prompt templates with one ``{}``; defaults to the 14 :data:`VILD_PROMPT` templates.
        chunk_size: prompts encoded per text-tower call (FC-CLIP: 128).
        cache_dir: optional directory for an on-disk cache (only used for encoders whose weights are real,
            i.e. ``identity_is_stable``; random-init models change every run).
        max_memory_entries: in-memory cache size (oldest entries evicted first).

    Call it as ``builder(encoder, vocabulary) -> (classifier S×D, num_synonyms list[int])`` where
    ``encoder`` has ``encode_text(list[str]) -> N×D`` (e.g. :class:`~ovseg.models.backbones.CLIPBackbone`)
    and optionally ``model_identity``, ``identity_is_stable``, ``text_weights_token()``, ``device``.
    """

    def __init__(self, templates: Optional[Sequence[str]] = None, chunk_size: int = 128,
                 cache_dir: Optional[str] = None, max_memory_entries: int = 16) -> None:
        self.templates: Tuple[str, ...] = tuple(templates) if templates is not None else VILD_PROMPT
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
        self._memory: Dict[Any, Tuple[Tensor, List[int]]] = {}
        self.num_encode_calls = 0  # prompts batches sent to the text tower (observability / tests)

    # -------------------------------------------------------------- core recipe
    def encode(self, encoder: Any, classes: List[Tuple[str, ...]]) -> Tuple[Tensor, List[int]]:
        """Uncached FC-CLIP recipe on validated ``classes``; returns (S×D normalized, synonyms per class)."""
        synonyms = [s for syns in classes for s in syns]
        prompts = [t.format(s) for s in synonyms for t in self.templates]
        feats = []
        for start in range(0, len(prompts), self.chunk_size):
            self.num_encode_calls += 1
            with torch.no_grad():
                feats.append(encoder.encode_text(prompts[start:start + self.chunk_size]).detach().float())
        emb = torch.cat(feats, dim=0)
        emb = F.normalize(emb, dim=-1)
        emb = emb.reshape(len(synonyms), len(self.templates), emb.shape[-1]).mean(dim=1)
        emb = F.normalize(emb, dim=-1)
        return emb, [len(syns) for syns in classes]

    # -------------------------------------------------------------- caching
    def _key(self, encoder: Any, classes: List[Tuple[str, ...]]) -> Tuple[Any, ...]:
        identity = getattr(encoder, 'model_identity', None) or f'object-{id(encoder)}'
        token_fn = getattr(encoder, 'text_weights_token', None)
        token = token_fn() if callable(token_fn) else ()
        return (identity, token, self.templates, tuple(classes))

    def _disk_path(self, encoder: Any, classes: List[Tuple[str, ...]]) -> Optional[str]:
        if not self.cache_dir or not getattr(encoder, 'identity_is_stable', False):
            return None
        payload = json.dumps({'model': encoder.model_identity, 'templates': list(self.templates),
                              'vocabulary': [list(c) for c in classes]}, sort_keys=True)
        digest = hashlib.sha256(payload.encode()).hexdigest()[:24]
        return os.path.join(self.cache_dir, f'text_classifier_{digest}.pt')

    def __call__(self, encoder: Any, vocabulary: Vocabulary) -> Tuple[Tensor, List[int]]:
        classes = normalize_vocabulary(vocabulary)
        device = getattr(encoder, 'device', None)
        key = self._key(encoder, classes)
        hit = self._memory.get(key)
        if hit is None:
            path = self._disk_path(encoder, classes)
            if path is not None and os.path.isfile(path):
                data = torch.load(path, map_location='cpu', weights_only=True)
                hit = (data['classifier'], [int(n) for n in data['num_synonyms']])
            else:
                emb, nums = self.encode(encoder, classes)
                hit = (emb, nums)
                if path is not None:
                    os.makedirs(self.cache_dir, exist_ok=True)
                    tmp = f'{path}.tmp{os.getpid()}'
                    torch.save({'classifier': emb.cpu(), 'num_synonyms': nums}, tmp)
                    os.replace(tmp, path)
            if len(self._memory) >= self.max_memory_entries:
                self._memory.pop(next(iter(self._memory)))
            self._memory[key] = hit
        emb, nums = hit
        if device is not None and emb.device != device:
            emb = emb.to(device)
            self._memory[key] = (emb, nums)
        return emb, list(nums)

    def clear_cache(self) -> None:
        self._memory.clear()


# The brief's alias: some callers think of this as a text encoder for open vocabularies.
OpenVocabTextEncoder = TextClassifierBuilder
MODELS.register_module(name='OpenVocabTextEncoder', module=TextClassifierBuilder)
