"""SEEM v1's decoder (``sem_seg_head.predictor``) on the core masked-attention decoder.

Source: SEEM v1.0 (``UX-Decoder/Segment-Everything-Everywhere-All-At-Once``, branch ``v1.0`` @ ``7b2e76d``):
``modeling/interface/seem_v1.py`` (``SEEMDecoder``), ``modeling/interface/prototype/attention_data_struct_seemv1.py``
(``AttentionDataStruct``), ``modeling/utils/interactive.py`` (``rand_sample``) and the ``ATTENTION_ARCH`` block of
``configs/seem/focall_unicl_lang_v1.yaml``.

What is reused from :class:`~ovseg.models.decoders.MaskedAttentionDecoder` (same names as the official predictor,
so ``sem_seg_head.predictor.*`` loads by prefix): ``transformer_{cross,self}_attention_layers`` /
``transformer_ffn_layers`` (post-norm, ReLU), ``decoder_norm``, ``query_feat`` / ``query_embed`` (101),
``level_embed`` (3), ``input_proj`` (empty when ``in_channels == hidden_dim``, as SEEM), ``mask_embed`` (3-layer
MLP), ``pe_layer`` and :func:`~ovseg.models.decoders.masked_attention_decoder.masked_attention_mask`. SEEM adds:

* ``class_embed`` (``hidden_dim × dim_proj`` parameter): ``decoder_norm(q) @ class_embed`` is scored against the
  class text embeddings (``'background'`` last = no-object column) by the language encoder's
  ``compute_similarity`` (``logit_scale.exp() · normalize(v) @ tᵀ``); the same projection is the query's "caption"
  embedding (``pred_captions`` / ``pred_gtexts`` / ``pred_stexts``);
* spatial parameters: ``mask_sptial_embed`` (3 × ``hidden × hidden``), ``spatial_embed`` / ``spatial_featured``
  (``SPATIAL_MEMORIES`` 32 memory queries), ``pn_indicator`` (positive / negative click embedding).

**Layer order** (``seem_v1.py`` forward): prediction heads on the learnable queries, then per layer ``i``:
cross-attention to level ``i % 3`` with masked attention (``sigmoid(prev mask) < 0.5`` blocked, a fully blocked
row is opened) → self-attention → FFN → prediction heads. ``DEC_LAYERS 10`` gives 9 layers + 10 predictions.

**Query groups** (``ATTENTION_ARCH``): cross-attention runs over the *queries* ``object`` (always), ``grounding``
(when sentence tokens are given), ``spatial`` (when visual prompts are given) and the spatial *memories* (when a
previous round's mask ``prev_mask`` is given); *tokens* (``grounding`` / ``spatial``) take part in self-attention
and the FFN only. ``DUPLICATION``: grounding queries are a copy of all object queries (features and positions);
spatial queries are ``QUERY_NUMBER`` (3) × prompts object queries drawn at random (``Variable.rand_sample``:
``torch.randint`` indices). Token positions are detached copies of the initial tokens. Grounding tokens carry their
self-attention/FFN output to the next layer; spatial tokens are rebuilt from each layer's level.

**Self-attention mask** (True = blocked; :func:`seem_self_attn_mask`) from ``SELF_ATTENTION`` + ``MASKING``:

==================  ===========================================================================================
rows                may attend to
==================  ===========================================================================================
object queries      object queries only (never grounding / spatial tokens or other groups)
grounding queries   grounding queries, valid grounding tokens
grounding tokens    grounding queries, valid grounding tokens (padding rows / columns blocked)
spatial queries     the ``QUERY_NUMBER`` queries of the same prompt, spatial tokens of the same prompt,
                    memories assigned to the same prompt
spatial tokens      spatial tokens of the same prompt index (padding has index -1)
memories            memories assigned to the same prompt
==================  ===========================================================================================

SEEM's self-attention (``modeling/utils/attention.py``) turns a fully blocked row (a padding grounding token) into
zeros with ``softmax(...).nan_to_num()``; ``nn.MultiheadAttention`` would give NaN, which would then leak through
zero weights. Such rows are opened here instead: their outputs differ from SEEM's but are never read (every other
row blocks them), so all outputs that matter are the same.

**Spatial path** (inference; used by ``SEEM.predict_spatial`` and the demo): prompt masks (one bool map per prompt,
at the padded input size) are sampled into points (``rand_sample``: at most ``MAX_SPATIAL_LEN`` points, equal
probability mass per prompt, normalised ``(y/H, x/W)``); per level ``i`` the points read the level's features
``@ mask_sptial_embed[i]`` (``point_sample``, ``align_corners=True``) + ``pn_indicator`` → spatial tokens; the
mean ``mask_features`` at the positive points is the prompt embedding (``pred_pspatials``). After the last layer
the output of each prompt is the candidate query whose mask embedding (``pred_smaskembs``) best matches the prompt
embedding (``update_spatial_results``) → ``prev_mask``. With ``prev_mask`` given, the 32 memory queries
cross-attend inside the previous masks (``cross_attn_mask``'s hard-coded memory mask; memories are assigned to
prompts by a uniform multinomial draw per layer).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from timm.layers import trunc_normal_
from torch import Tensor, nn

from ovseg.models.decoders import MaskedAttentionDecoder
from ovseg.models.decoders.masked_attention_decoder import masked_attention_mask
from ovseg.models.utils.point_sample import point_sample
from ovseg.registry import MODELS

__all__ = ['SEEMDecoder', 'SEEMQueryLayout', 'rand_sample_prompt_points', 'seem_self_attn_mask']


@dataclass(frozen=True)
class SEEMQueryLayout:
    """Sizes of the query / token groups of one decoder call; slices in the self-attention sequence.

    Order: the cross-attending groups (``object``, ``grounding``, ``spatial`` queries, ``memories``) first, then
    the tokens (``grounding_tokens``, ``spatial_tokens``). Attention is permutation-equivariant, so this order
    (SEEM's self-attention sequence puts its tokens between the queries and the memories) changes nothing.
    """

    object: int
    grounding: int = 0
    spatial: int = 0
    memories: int = 0
    grounding_tokens: int = 0
    spatial_tokens: int = 0

    @property
    def names(self) -> tuple[str, ...]:
        return ('object', 'grounding', 'spatial', 'memories', 'grounding_tokens', 'spatial_tokens')

    @property
    def num_cross(self) -> int:
        """Rows that cross-attend and get predictions (queries + memories)."""
        return self.object + self.grounding + self.spatial + self.memories

    @property
    def total(self) -> int:
        return self.num_cross + self.grounding_tokens + self.spatial_tokens

    def slice(self, name: str) -> slice:
        start = 0
        for n in self.names:
            size = getattr(self, n)
            if n == name:
                return slice(start, start + size)
            start += size
        raise KeyError(name)


def seem_self_attn_mask(layout: SEEMQueryLayout, batch: int, device: torch.device | None = None,
                        grounding_padding: Tensor | None = None, spatial_token_prompt: Tensor | None = None,
                        spatial_query_prompt: Tensor | None = None, memory_prompt: Tensor | None = None,
                        open_blocked_rows: bool = True) -> Tensor:
    """SEEM v1's self-attention mask (``AttentionDataStruct.self_attn``) → bool B×S×S, True = blocked.

    Args:
        layout: group sizes.
        grounding_padding: B×T bool, True = padding grounding token (``grounding_nonzero_mask``).
        spatial_token_prompt: B×N long, the prompt index of every spatial token (-1 = padding).
        spatial_query_prompt: long[Qs], the prompt of every spatial query (``QUERY_NUMBER`` per prompt).
        memory_prompt: long[M], the prompt each memory query is assigned to.
        open_blocked_rows: open fully blocked rows (padding tokens) instead of SEEM's NaN→0 (see module doc).
    """
    s = layout.slice
    mask = torch.ones(batch, layout.total, layout.total, dtype=torch.bool, device=device)
    # SELF_ATTENTION pairs (rows → columns allowed)
    allowed = {'object': ('object',), 'grounding': ('grounding', 'grounding_tokens'),
               'spatial': ('spatial', 'spatial_tokens', 'memories'),
               'grounding_tokens': ('grounding', 'grounding_tokens'), 'spatial_tokens': ('spatial_tokens',),
               'memories': ('memories',)}
    for row, cols in allowed.items():
        for col in cols:
            mask[:, s(row), s(col)] = False
    # MASKING: padding tokens are blocked as rows and columns within their group, and against the paired group
    if layout.grounding_tokens and grounding_padding is not None:
        pad = grounding_padding.to(device=mask.device, dtype=torch.bool)
        g, t = s('grounding'), s('grounding_tokens')
        block = mask[:, t, t]
        block[pad] = True
        block.transpose(1, 2)[pad] = True
        mask[:, t, t] = block
        mask[:, g, t] = mask[:, g, t] | pad[:, None, :]  # grounding queries do not see padding tokens
        mask[:, t, g] = mask[:, t, g] | pad[:, :, None]  # padding tokens do not see the grounding queries
    if layout.spatial_tokens and spatial_token_prompt is not None:
        idx = spatial_token_prompt.to(mask.device)
        q, t = s('spatial'), s('spatial_tokens')
        qp = spatial_query_prompt.to(mask.device)
        mask[:, q, q] = qp[:, None] != qp[None, :]  # queries of the same prompt
        mask[:, q, t] = qp[None, :, None] != idx[:, None, :]  # tokens of the same prompt (padding: -1)
        mask[:, t, t] = idx[:, :, None] != idx[:, None, :]  # tokens of the same prompt index
    if layout.memories and memory_prompt is not None:
        mp = memory_prompt.to(mask.device)
        q, m = s('spatial'), s('memories')
        qp = spatial_query_prompt.to(mask.device)
        mask[:, q, m] = (qp[:, None] != mp[None, :])[None]
        mask[:, m, m] = (mp[:, None] != mp[None, :])[None]
    if open_blocked_rows:
        mask = mask & ~mask.all(-1, keepdim=True)
    return mask


def rand_sample_prompt_points(masks: Tensor, max_len: int, generator: torch.Generator | None = None) -> Tensor:
    """SEEM ``rand_sample``: points of the ns×H×W prompt masks → n×3 ``(prompt index, y/H, x/W)``.

    At most ``max_len`` points are drawn without replacement, each prompt present getting the same probability
    mass (``1 / (num_prompts · pixels_of_prompt)`` per pixel); the draw is sorted (row-major pixel order).
    """
    nz = masks.nonzero()
    if nz.numel() == 0:
        return masks.new_zeros((0, 3), dtype=torch.float32)
    h, w = masks.shape[-2:]
    points = nz.float() / torch.tensor([1.0, h, w], device=masks.device)
    ids = nz[:, 0]
    counts = torch.bincount(ids)
    present = int((counts > 0).sum())
    probs = 1.0 / (present * counts[ids].float())
    if generator is not None:  # draw where the generator lives (a CPU generator with a CUDA model)
        probs = probs.to(generator.device)
    keep = torch.multinomial(probs, num_samples=min(int(max_len), len(probs)), replacement=False,
                             generator=generator).sort()[0]
    return points[keep.to(points.device)]


def _pad_batch(seqs: Sequence[Tensor], value: float) -> Tensor:
    return nn.utils.rnn.pad_sequence(list(seqs), batch_first=True, padding_value=value)


@MODELS.register_module()
class SEEMDecoder(MaskedAttentionDecoder):
    """SEEM v1 decoder: object / grounding / spatial queries with SEEM's attention wiring (see module doc).

    Args:
        in_channels / hidden_dim / num_queries / nheads / dim_feedforward / dec_layers / pre_norm / mask_dim /
            enforce_input_project / num_feature_levels / dropout: as :class:`MaskedAttentionDecoder`; SEEM v1
            (``focal{l,t}_unicl_lang_v1.yaml``): 512 / 512 / 101 / 8 / 2048 / 9 (``DEC_LAYERS 10`` − 1) / False /
            512 / False / 3 / 0.0.
        dim_proj: width of ``class_embed`` = the language embedding (``MODEL.DIM_PROJ`` 512).
        spatial: build the spatial parameters (``DECODER.SPATIAL.ENABLED``; True in the released v1 checkpoints).
        num_spatial_memories: ``ATTENTION_ARCH.SPATIAL_MEMORIES`` (32).
        query_number: spatial queries per prompt (``ATTENTION_ARCH.QUERY_NUMBER`` 3).
        max_spatial_len: points sampled per prompt set, per level and (last entry) for the prompt embedding
            (``MAX_SPATIAL_LEN`` [512, 512, 512, 512]).
    """

    def __init__(self, in_channels: int = 512, hidden_dim: int = 512, dim_proj: int = 512, num_queries: int = 101,
                 nheads: int = 8, dim_feedforward: int = 2048, dec_layers: int = 9, pre_norm: bool = False,
                 mask_dim: int = 512, enforce_input_project: bool = False, spatial: bool = True,
                 num_spatial_memories: int = 32, query_number: int = 3,
                 max_spatial_len: Sequence[int] = (512, 512, 512, 512), num_feature_levels: int = 3,
                 dropout: float = 0.0) -> None:
        super().__init__(in_channels=in_channels, hidden_dim=hidden_dim, num_queries=num_queries, nheads=nheads,
                         dim_feedforward=dim_feedforward, dec_layers=dec_layers, pre_norm=pre_norm,
                         mask_dim=mask_dim, enforce_input_project=enforce_input_project, class_head=None,
                         num_feature_levels=num_feature_levels, dropout=dropout)
        self.hidden_dim, self.dim_proj, self.mask_dim = hidden_dim, dim_proj, mask_dim
        self.class_embed = nn.Parameter(torch.empty(hidden_dim, dim_proj))
        trunc_normal_(self.class_embed, std=0.02)
        self.spatial_enabled = bool(spatial)
        self.query_number = int(query_number)
        self.max_spatial_len = tuple(int(x) for x in max_spatial_len)
        if len(self.max_spatial_len) < num_feature_levels + 1:
            raise ValueError(f'max_spatial_len needs {num_feature_levels + 1} entries (one per level + the prompt '
                             f'embedding), got {self.max_spatial_len}')
        if spatial:
            if mask_dim != hidden_dim:
                raise ValueError('the spatial path compares mask embeddings with mask features: needs mask_dim == '
                                 f'hidden_dim, got {mask_dim} / {hidden_dim}')
            self.mask_sptial_embed = nn.ParameterList(
                [nn.Parameter(torch.empty(hidden_dim, hidden_dim)) for _ in range(num_feature_levels)])
            for p in self.mask_sptial_embed:
                trunc_normal_(p, std=0.02)
            self.spatial_embed = nn.Embedding(num_spatial_memories, hidden_dim)
            self.spatial_featured = nn.Embedding(num_spatial_memories, hidden_dim)
            self.pn_indicator = nn.Embedding(2, hidden_dim)

    # ------------------------------------------------------------------ forward
    def forward(self, multi_scale_features: Sequence[Tensor], mask_features: Tensor,
                class_inputs: Mapping[str, Any] | None = None, *, grounding_tokens: Tensor | None = None,
                grounding_padding_mask: Tensor | None = None,
                spatial_prompts: Mapping[str, Sequence[Tensor]] | None = None, prev_mask: Tensor | None = None,
                generator: torch.Generator | None = None) -> dict[str, Any]:
        """Decode object queries, plus grounding / spatial queries when their inputs are given.

        Args:
            multi_scale_features: 3 maps B×C×h×w, coarse to fine.
            mask_features: B×mask_dim×H×W.
            class_inputs: ``class_embeddings`` ((C+1)×dim_proj, normalised, 'background' last) and
                ``lang_encoder`` (has ``compute_similarity``); without them ``pred_logits`` is omitted.
            grounding_tokens: B×T×dim_proj sentence token embeddings (all valid tokens of an image's sentences,
                concatenated; ``token_emb[attention_mask]``), ``grounding_padding_mask`` B×T (True = padding).
            spatial_prompts: ``{'pos': [ns_b×H×W bool per image], 'neg': [...] (optional)}`` prompt masks at
                the padded input size (one map per prompt).
            prev_mask: B×ns×h×w mask logits of the previous round (enables the spatial memories).
            generator: random source of the point and query draws.

        Returns:
            ``pred_logits`` B×Q×(C+1), ``pred_masks`` B×Q×H×W, ``pred_captions`` B×Q×dim_proj; with grounding
            ``pred_gmasks`` / ``pred_gtexts`` (B×Q×…); with spatial prompts ``pred_smasks`` / ``pred_stexts`` /
            ``pred_smaskembs`` (B×3ns×…), ``pred_pspatials`` / ``pred_nspatials`` (B×ns×mask_dim) and
            ``prev_mask`` (B×ns×H×W, the selected mask per prompt); ``aux_outputs``: the same keys (without
            ``prev_mask``) for the 9 earlier predictions, first to last.
        """
        class_inputs = dict(class_inputs or {})
        src, pos, sizes = self.memory(multi_scale_features)
        bs = src[0].shape[1]
        obj_pos = self.query_embed.weight.unsqueeze(1).repeat(1, bs, 1)
        obj = self.query_feat.weight.unsqueeze(1).repeat(1, bs, 1)
        outs, poss = [obj], [obj_pos]
        sizes_of: dict[str, int] = dict(object=self.num_queries)

        # grounding: copies of every object query + sentence tokens (self-attention / FFN only)
        g_tokens = g_pos = g_pad = None
        if grounding_tokens is not None:
            if grounding_tokens.dim() != 3 or grounding_tokens.shape[0] != bs:
                raise ValueError(f'grounding_tokens must be B×T×D with B={bs}, got {tuple(grounding_tokens.shape)}')
            if grounding_tokens.shape[-1] != self.hidden_dim:
                raise ValueError(f'grounding tokens are {grounding_tokens.shape[-1]}-d but the queries '
                                 f'{self.hidden_dim}-d (SEEM has DIM_PROJ == HIDDEN_DIM)')
            g_tokens = grounding_tokens.transpose(0, 1)
            g_pos = g_tokens.detach().clone()
            g_pad = (torch.zeros(grounding_tokens.shape[:2], dtype=torch.bool, device=grounding_tokens.device)
                     if grounding_padding_mask is None else grounding_padding_mask.bool())
            outs.append(obj.clone())
            poss.append(obj_pos.clone())
            sizes_of.update(grounding=self.num_queries, grounding_tokens=g_tokens.shape[0])

        # spatial: prompt points → per-level tokens; QUERY_NUMBER random object queries per prompt
        spatial = None
        if spatial_prompts is not None:
            spatial = self._spatial_inputs(src, sizes, mask_features, spatial_prompts, generator)
            ns = spatial['num_prompts']
            idx = torch.randint(0, self.num_queries, (self.query_number * ns,), generator=generator,
                                device=generator.device if generator is not None else 'cpu').to(obj.device)
            outs.append(obj[idx].clone())
            poss.append(obj_pos[idx].clone())
            sizes_of['spatial'] = self.query_number * ns
            spatial['query_prompt'] = torch.arange(ns, device=obj.device).repeat_interleave(self.query_number)
            if prev_mask is not None:
                if prev_mask.shape[:2] != (bs, ns):
                    raise ValueError(f'prev_mask must be B×ns×h×w = {bs}×{ns}×…, got {tuple(prev_mask.shape)}')
                outs.append(self.spatial_featured.weight.unsqueeze(1).repeat(1, bs, 1))
                poss.append(self.spatial_embed.weight.unsqueeze(1).repeat(1, bs, 1))
                sizes_of['memories'] = self.spatial_featured.num_embeddings
        elif prev_mask is not None:
            raise ValueError('prev_mask (spatial memories) needs spatial_prompts')

        output, query_pos = torch.cat(outs), torch.cat(poss)
        predictions = [self._heads(output, mask_features, sizes[0])]
        for i in range(self.num_layers):
            level = i % self.num_feature_levels
            layout = SEEMQueryLayout(**sizes_of, spatial_tokens=0 if spatial is None else
                                     spatial['tokens'][level].shape[0])
            attn_mask = predictions[-1][-1]
            memory_prompt = None
            if layout.memories:
                attn_mask, memory_prompt = self._memory_attn_mask(attn_mask, layout, prev_mask, sizes[level],
                                                                  generator)
            output = self.transformer_cross_attention_layers[i](output, src[level], attn_mask, pos[level], query_pos)
            seq, seq_pos = [output], [query_pos]
            if g_tokens is not None:
                seq.append(g_tokens)
                seq_pos.append(g_pos)
            if spatial is not None:
                tokens = spatial['tokens'][level]
                seq.append(tokens)
                seq_pos.append(tokens.detach().clone())
            self_mask = seem_self_attn_mask(
                layout, bs, output.device, grounding_padding=g_pad,
                spatial_token_prompt=None if spatial is None else spatial['token_prompt'][level],
                spatial_query_prompt=None if spatial is None else spatial['query_prompt'],
                memory_prompt=memory_prompt)
            seq_out = self.transformer_self_attention_layers[i](
                torch.cat(seq), torch.cat(seq_pos), self_mask.repeat_interleave(self.num_heads, dim=0))
            seq_out = self.transformer_ffn_layers[i](seq_out)
            output = seq_out[:layout.num_cross]
            if g_tokens is not None:
                g_tokens = seq_out[layout.slice('grounding_tokens')]
            last = i == self.num_layers - 1
            predictions.append(self._heads(output, mask_features,
                                           None if last else sizes[(i + 1) % self.num_feature_levels]))
        return self._organize(predictions, SEEMQueryLayout(**sizes_of), class_inputs, spatial)

    # ------------------------------------------------------------------ pieces
    def _heads(self, output: Tensor, mask_features: Tensor, attn_size: tuple[int, int] | None
               ) -> tuple[Tensor, Tensor, Tensor, Tensor | None]:
        """``forward_prediction_heads``: (class_embed projection, mask embeddings, masks, next attention mask)."""
        decoder_output = self.decoder_norm(output).transpose(0, 1)
        proj = decoder_output @ self.class_embed
        mask_embed = self.mask_embed(decoder_output)
        masks = torch.einsum('bqc,bchw->bqhw', mask_embed, mask_features)
        attn = None if attn_size is None else masked_attention_mask(masks, attn_size, self.num_heads)
        return proj, mask_embed, masks, attn

    def _memory_attn_mask(self, attn_mask: Tensor, layout: SEEMQueryLayout, prev_mask: Tensor,
                          size: tuple[int, int], generator: torch.Generator | None) -> tuple[Tensor, Tensor]:
        """SEEM's ``cross_attn_mask``: memory rows attend inside the previous mask of their (random) prompt."""
        ns = prev_mask.shape[1]
        prev = F.interpolate(prev_mask.float(), size=size, mode='bilinear', align_corners=False)
        prev = (prev.sigmoid().flatten(2) < 0.5).unsqueeze(1).expand(-1, self.num_heads, -1, -1).flatten(0, 1)
        mem = layout.slice('memories')
        probs = torch.full((ns,), 1.0 / ns)
        prompt = torch.multinomial(probs, num_samples=layout.memories, replacement=True,
                                   generator=generator).sort()[0].to(attn_mask.device)
        attn_mask = attn_mask.clone()
        attn_mask[:, mem] = prev[:, prompt]
        attn_mask = attn_mask & ~attn_mask.all(-1, keepdim=True)
        return attn_mask, prompt

    def _spatial_inputs(self, src: list[Tensor], sizes: list[tuple[int, int]], mask_features: Tensor,
                        prompts: Mapping[str, Sequence[Tensor]], generator: torch.Generator | None) -> dict[str, Any]:
        """Prompt embeddings (mean mask feature at the positive points) and per-level spatial tokens."""
        if not self.spatial_enabled:
            raise RuntimeError('this SEEMDecoder was built with spatial=False: no spatial prompts')
        pos_masks = [m.bool() for m in prompts['pos']]
        neg_masks = [m.bool() for m in prompts.get('neg') or [torch.zeros_like(m) for m in pos_masks]]
        bs, device = mask_features.shape[0], mask_features.device
        if len(pos_masks) != bs or len(neg_masks) != bs:
            raise ValueError(f'spatial prompts: need one pos (and neg) mask stack per image ({bs}), '
                             f'got {len(pos_masks)} / {len(neg_masks)}')
        ns = max(int(m.shape[0]) for m in pos_masks)
        if ns == 0:
            raise ValueError('spatial prompts: no prompt given')

        def embed(masks: list[Tensor]) -> Tensor:
            """B×ns×C mean mask feature at the sampled points of each prompt (-1 where a prompt has none)."""
            rows = []
            for b, m in enumerate(masks):
                pts = rand_sample_prompt_points(m, self.max_spatial_len[-1], generator).to(device)
                feats = point_sample(mask_features[b:b + 1], pts[None, :, 1:].flip(-1).to(mask_features.dtype),
                                     align_corners=True)[0].t() if len(pts) else mask_features.new_zeros(0, 1)
                ids = pts[:, 0].long()
                per = [feats[ids == n].mean(0) if (ids == n).any() else
                       -torch.ones(mask_features.shape[1], device=device, dtype=mask_features.dtype)
                       for n in range(m.shape[0])]
                rows.append(torch.stack(per) if per else mask_features.new_zeros(0, mask_features.shape[1]))
            return _pad_batch(rows, -1.0).nan_to_num()

        out = dict(num_prompts=ns, pos_embed=embed(pos_masks), neg_embed=embed(neg_masks), tokens=[],
                   token_prompt=[])
        for level, (x, (h, w)) in enumerate(zip(src, sizes)):
            feats = (x.view(h, w, bs, -1) @ self.mask_sptial_embed[level]).permute(2, 3, 0, 1)  # B×C×h×w
            coords, index, sign = [], [], []
            for p, n in zip(pos_masks, neg_masks):
                pp = rand_sample_prompt_points(p, self.max_spatial_len[level], generator).to(device)
                nn_ = rand_sample_prompt_points(n, self.max_spatial_len[level], generator).to(device)
                coords.append(torch.cat([pp[:, 1:], nn_[:, 1:]]))
                index.append(torch.cat([pp[:, 0], nn_[:, 0]]).long())
                sign.append(torch.cat([torch.ones(len(pp), device=device), -torch.ones(len(nn_), device=device)]))
            coords_b = _pad_batch(coords, 0.0)  # padding reads (0, 0), as SEEM's
            index_b = _pad_batch(index, -1)
            sign_b = _pad_batch(sign, 0.0)
            tokens = point_sample(feats, coords_b.flip(-1).to(feats.dtype), align_corners=True).permute(2, 0, 1)
            sign_t = sign_b.t()
            tokens = (tokens + (sign_t == 1)[..., None] * self.pn_indicator.weight[0]
                      + (sign_t == -1)[..., None] * self.pn_indicator.weight[1])
            out['tokens'].append(tokens)
            out['token_prompt'].append(index_b)
        return out

    def _organize(self, predictions: list[tuple], layout: SEEMQueryLayout, class_inputs: dict[str, Any],
                  spatial: dict[str, Any] | None) -> dict[str, Any]:
        """``organize_output`` + ``update_spatial_results``: per-group outputs, last prediction first-class."""
        emb, lang = class_inputs.get('class_embeddings'), class_inputs.get('lang_encoder')
        o, g, s = layout.slice('object'), layout.slice('grounding'), layout.slice('spatial')

        def one(pred: tuple) -> dict[str, Any]:
            proj, mask_embed, masks, _ = pred
            out = dict(pred_masks=masks[:, o], pred_captions=proj[:, o])
            if emb is not None and lang is not None:
                out['pred_logits'] = lang.compute_similarity(proj[:, o], emb.to(proj))
            if layout.grounding:
                out.update(pred_gmasks=masks[:, g], pred_gtexts=proj[:, g])
            if layout.spatial:
                out.update(pred_smasks=masks[:, s], pred_stexts=proj[:, s], pred_smaskembs=mask_embed[:, s],
                           pred_pspatials=spatial['pos_embed'], pred_nspatials=spatial['neg_embed'])
            return out

        result = one(predictions[-1])
        result['aux_outputs'] = [one(p) for p in predictions[:-1]]
        if layout.spatial:
            result['prev_mask'] = self.select_spatial_masks(result, self.query_number)
        return result

    @staticmethod
    def select_spatial_masks(outputs: Mapping[str, Tensor], query_number: int) -> Tensor:
        """``update_spatial_results``: per prompt, the candidate (of its ``query_number``) whose mask embedding
        has the largest dot product with the prompt embedding → B×ns×H×W mask logits."""
        v_emb, s_emb, masks = outputs['pred_smaskembs'], outputs['pred_pspatials'], outputs['pred_smasks']
        ns = s_emb.shape[1]
        own = torch.eye(ns, device=s_emb.device, dtype=torch.bool).repeat_interleave(query_number, dim=0)
        logits = (v_emb @ s_emb.transpose(1, 2)).masked_fill(~own[None], float('-inf'))  # B×3ns×ns
        best = logits.argmax(dim=1)  # B×ns
        return torch.gather(masks, 1, best[..., None, None].expand(-1, -1, *masks.shape[-2:]))
