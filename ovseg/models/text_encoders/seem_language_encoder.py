"""SEEM's language encoder (``sem_seg_head.predictor.lang_encoder``): CLIP-style text transformer + projection.

SEEM v1.0 ``modeling/language/vlpencoder.py`` (``LanguageEncoder``) wraps ``LangEncoder/transformer.py``: a causal CLIP
text transformer (``MODEL.TEXT``: CONTEXT_LENGTH 77, WIDTH 512, HEADS 8, LAYERS 12, AUTOGRESSIVE True, vocab 49408 from
the CLIP tokenizer), QuickGELU, TF-style LayerNorm with eps 1e-12, then ``lang_proj`` (WIDTH×DIM_PROJ, truncated-normal
0.02) and ``logit_scale`` (a scalar initialised to 1). Here the transformer is open_clip's ``TextTransformer``
configured identically (parity with SEEM's ``LangEncoder/transformer.py`` checked to 1.2e-6), held as ``lang_encoder``
so keys read ``lang_encoder.transformer.resblocks.*`` — SEEM's ``lang_encoder.resblocks.*`` map by a rename
(``ovseg.models.utils.seem_names``). Tokenisation is open_clip's ``SimpleTokenizer`` (the OpenAI BPE SEEM loads through
HF's ``CLIPTokenizer``; ids agree up to and including EOT; padding differs — 0 here, EOT in HF — which changes nothing
under the causal mask and the EOT / attention-mask selections).

What SEEM does with it, reproduced here:

* sentence embedding: the final hidden state at EOT (``argmax`` of the ids) ``@ lang_proj``
  (``forward_language``), L2-normalised with ``x / (‖x‖ + 1e-7)`` when asked;
* token embeddings for grounding: every hidden state ``@ lang_proj`` with an attention mask marking positions up
  to and including EOT (``forward_language_token`` + the tokenizer's ``attention_mask``);
* class embeddings (``get_text_embeddings``): the class names (SEEM appends ``'background'``, the no-object
  column, and templates it like any class) stripped of ``-other`` / ``-merged`` / ``-stuff``; training picks one
  random template per class (and drops ``,`` and turns ``+`` into a space, as ``prompt_engineering`` does),
  evaluation averages the normalised embeddings of all :data:`SEEM_PROMPT_TEMPLATES` and re-normalises;
* ``compute_similarity``: ``logit_scale.exp() · normalize(v) @ tᵀ`` (t is already normalised);
* ``vl_similarity`` (``modeling/language/loss.py``, grounding): ``exp(logit_scale).clamp(max=100) · v @ tᵀ`` on
  inputs the caller normalised.

SEEM trains with the language encoder frozen (``SOLVER.FIX_PARAM.lang_encoder: True``), so it is frozen by default.
"""
from __future__ import annotations

import random
from collections.abc import Sequence
from functools import partial

import torch
from open_clip.tokenizer import SimpleTokenizer
from open_clip.transformer import QuickGELU, TextTransformer
from timm.layers import trunc_normal_
from torch import Tensor, nn

from ovseg.registry import MODELS

__all__ = ['SEEM_PROMPT_TEMPLATES', 'SEEMLanguageEncoder', 'seem_clean_class_name']

#: SEEM's ``get_prompt_templates()`` (``utils/prompt_engineering.py``, SEEM v1.0), verbatim and in order: ``'{}.'``
#: followed by the 80 OpenAI CLIP ImageNet templates.
SEEM_PROMPT_TEMPLATES: tuple[str, ...] = (
    '{}.', 'a photo of a {}.', 'a bad photo of a {}.', 'a photo of many {}.', 'a sculpture of a {}.',
    'a photo of the hard to see {}.', 'a low resolution photo of the {}.', 'a rendering of a {}.', 'graffiti of a {}.',
    'a bad photo of the {}.', 'a cropped photo of the {}.', 'a tattoo of a {}.', 'the embroidered {}.',
    'a photo of a hard to see {}.', 'a bright photo of a {}.', 'a photo of a clean {}.', 'a photo of a dirty {}.',
    'a dark photo of the {}.', 'a drawing of a {}.', 'a photo of my {}.', 'the plastic {}.', 'a photo of the cool {}.',
    'a close-up photo of a {}.', 'a black and white photo of the {}.', 'a painting of the {}.', 'a painting of a {}.',
    'a pixelated photo of the {}.', 'a sculpture of the {}.', 'a bright photo of the {}.', 'a cropped photo of a {}.',
    'a plastic {}.', 'a photo of the dirty {}.', 'a jpeg corrupted photo of a {}.', 'a blurry photo of the {}.',
    'a photo of the {}.', 'a good photo of the {}.', 'a rendering of the {}.', 'a {} in a video game.',
    'a photo of one {}.', 'a doodle of a {}.', 'a close-up photo of the {}.', 'the origami {}.',
    'the {} in a video game.', 'a sketch of a {}.', 'a doodle of the {}.', 'a origami {}.',
    'a low resolution photo of a {}.', 'the toy {}.', 'a rendition of the {}.', 'a photo of the clean {}.',
    'a photo of a large {}.', 'a rendition of a {}.', 'a photo of a nice {}.', 'a photo of a weird {}.',
    'a blurry photo of a {}.', 'a cartoon {}.', 'art of a {}.', 'a sketch of the {}.', 'a embroidered {}.',
    'a pixelated photo of a {}.', 'itap of the {}.', 'a jpeg corrupted photo of the {}.', 'a good photo of a {}.',
    'a plushie {}.', 'a photo of the nice {}.', 'a photo of the small {}.', 'a photo of the weird {}.',
    'the cartoon {}.', 'art of the {}.', 'a drawing of the {}.', 'a photo of the large {}.',
    'a black and white photo of a {}.', 'the plushie {}.', 'a dark photo of a {}.', 'itap of a {}.',
    'graffiti of the {}.', 'a toy {}.', 'itap of my {}.', 'a photo of a cool {}.', 'a photo of a small {}.',
    'a tattoo of the {}.',
)

_EPS = 1e-7  # SEEM: x / (x.norm(dim=-1, keepdim=True) + 1e-7)


def seem_clean_class_name(name: str) -> str:
    """Drop COCO-panoptic suffixes as SEEM does before templating: ``-other``, ``-merged``, ``-stuff``."""
    return name.replace('-other', '').replace('-merged', '').replace('-stuff', '')


def _normalize(x: Tensor) -> Tensor:
    return x / (x.norm(dim=-1, keepdim=True) + _EPS)


@MODELS.register_module()
class SEEMLanguageEncoder(nn.Module):
    """SEEM ``LanguageEncoder``: tokenizer + causal text transformer + ``lang_proj`` + ``logit_scale``.

    Args:
        width / layers / heads / context_length / vocab_size: the text transformer (SEEM ``MODEL.TEXT``: 512 / 12 /
            8 / 77 / 49408). ``vocab_size`` must cover the CLIP BPE ids (49408) to encode real text.
        dim_proj: projection width (SEEM ``MODEL.DIM_PROJ`` 512).
        frozen: ``requires_grad=False`` on every parameter (SEEM ``FIX_PARAM.lang_encoder``); the trainable-set
            API may switch parameters back on.
        templates: evaluation prompt templates (default :data:`SEEM_PROMPT_TEMPLATES`).
        chunk_size: prompts per transformer call when encoding a vocabulary (bounds memory).
        background: the name appended last by :meth:`class_embeddings` (SEEM's no-object column).
    """

    def __init__(self, width: int = 512, layers: int = 12, heads: int = 8, context_length: int = 77,
                 vocab_size: int = 49408, dim_proj: int = 512, frozen: bool = True,
                 templates: Sequence[str] = SEEM_PROMPT_TEMPLATES, chunk_size: int = 256,
                 background: str = 'background') -> None:
        super().__init__()
        for t in templates:
            if t.count('{}') != 1:
                raise ValueError(f'prompt template {t!r} must contain exactly one "{{}}"')
        if not templates:
            raise ValueError('at least one prompt template is required')
        self.templates = tuple(templates)
        self.context_length, self.chunk_size, self.background = context_length, int(chunk_size), background
        self.tokenizer = SimpleTokenizer(context_length=context_length)
        self.lang_encoder = TextTransformer(
            context_length=context_length, vocab_size=vocab_size, width=width, heads=heads, layers=layers,
            output_dim=None, act_layer=QuickGELU, norm_layer=partial(nn.LayerNorm, eps=1e-12),
            pool_type='argmax', output_tokens=True)
        self.lang_proj = nn.Parameter(torch.empty(width, dim_proj))
        trunc_normal_(self.lang_proj, std=0.02)
        self.logit_scale = nn.Parameter(torch.ones([]))
        if frozen:
            self.requires_grad_(False)

    # ------------------------------------------------------------------ tokens
    def tokenize(self, texts: str | Sequence[str]) -> tuple[Tensor, Tensor]:
        """texts → (ids B×context_length LongTensor, attention_mask B×context_length bool: positions ≤ EOT),
        on the module's device. Long texts are truncated with EOT kept last (as HF's ``truncation=True``)."""
        texts = [texts] if isinstance(texts, str) else list(texts)
        ids = self.tokenizer(texts).to(self.lang_proj.device)
        eot = ids.argmax(dim=-1, keepdim=True)
        mask = torch.arange(ids.shape[1], device=ids.device)[None] <= eot
        return ids, mask

    def encode_ids(self, ids: Tensor) -> tuple[Tensor, Tensor]:
        """ids B×L → (EOT state B×width, all states B×L×width) after ``ln_final``, before ``lang_proj``."""
        pooled, tokens = self.lang_encoder(ids)
        return pooled, tokens

    def encode_sentences(self, texts: str | Sequence[str], normalize: bool = False) -> Tensor:
        """texts → B×dim_proj: the EOT state ``@ lang_proj`` (SEEM ``forward_language``)."""
        ids, _ = self.tokenize(texts)
        emb = self.encode_ids(ids)[0] @ self.lang_proj
        return _normalize(emb) if normalize else emb

    def encode_tokens(self, texts: str | Sequence[str], normalize: bool = False,
                      return_sentence: bool = False) -> tuple[Tensor, ...]:
        """texts → (token_emb B×L×dim_proj, attention_mask B×L) — SEEM's grounding tokens
        (``get_text_token_embeddings``: every state ``@ lang_proj``; the valid ones are ``token_emb[mask]``).
        With ``return_sentence`` the EOT embedding B×dim_proj (SEEM's ``class_emb``) is appended."""
        ids, mask = self.tokenize(texts)
        pooled, tokens = self.encode_ids(ids)
        token_emb, sentence = tokens @ self.lang_proj, pooled @ self.lang_proj
        if normalize:
            token_emb, sentence = _normalize(token_emb), _normalize(sentence)
        return (token_emb, mask, sentence) if return_sentence else (token_emb, mask)

    def _encode_prompts(self, prompts: Sequence[str]) -> Tensor:
        """Normalised sentence embeddings of many prompts, ``chunk_size`` at a time."""
        return torch.cat([self.encode_sentences(prompts[i:i + self.chunk_size], normalize=True)
                          for i in range(0, len(prompts), self.chunk_size)])

    # ------------------------------------------------------------------ vocabularies
    def class_embeddings(self, names: Sequence[str], templates: Sequence[str] | None = None, train: bool = False,
                         rng: random.Random | None = None, add_background: bool = True) -> Tensor:
        """Class names → (C [+1]) × dim_proj L2-normalised text classifier (SEEM ``get_text_embeddings``).

        ``add_background`` appends :attr:`background` as the last row (the no-object column). ``train=False``:
        the mean of the normalised embeddings of every template, re-normalised, without gradients (as SEEM's
        ``is_eval`` branch). ``train=True``: one template per class drawn from ``rng`` (``random`` when None),
        name cleaned of ``,`` and ``+`` as SEEM's ``prompt_engineering``; gradients flow where parameters are
        trainable.
        """
        templates = self.templates if templates is None else tuple(templates)
        names = [seem_clean_class_name(n) for n in names] + ([self.background] if add_background else [])
        if not names:
            raise ValueError('no class names to encode')
        if train:
            rng = rng if rng is not None else random
            prompts = [rng.choice(templates).format(n.replace(',', '').replace('+', ' ')) for n in names]
            return self._encode_prompts(prompts)
        with torch.no_grad():
            prompts = [t.format(n) for n in names for t in templates]
            emb = self._encode_prompts(prompts).view(len(names), len(templates), -1).mean(1)
            return emb / emb.norm(dim=-1, keepdim=True)

    # ------------------------------------------------------------------ scores
    def compute_similarity(self, v_emb: Tensor, text_emb: Tensor) -> Tensor:
        """Class logits ``logit_scale.exp() · normalize(v) @ text_embᵀ`` (SEEM ``compute_similarity``).

        v_emb: …×dim_proj (e.g. B×Q×D); text_emb: C×dim_proj, already L2-normalised (:meth:`class_embeddings`),
        as SEEM, which normalises only ``v`` here. Returns …×C.
        """
        return self.logit_scale.exp() * _normalize(v_emb) @ text_emb.t()

    def vl_similarity(self, v_emb: Tensor, t_emb: Tensor) -> Tensor:
        """Grounding logits ``exp(logit_scale).clamp(max=100) · v @ tᵀ`` (SEEM ``loss.vl_similarity``); the
        caller passes normalised ``v`` (N×D) and ``t`` (M×D), as SEEM does."""
        return self.logit_scale.exp().clamp(max=100) * (v_emb @ t_emb.t())

    def forward(self, texts: str | Sequence[str], normalize: bool = False) -> Tensor:
        """Same as :meth:`encode_sentences`."""
        return self.encode_sentences(texts, normalize=normalize)
