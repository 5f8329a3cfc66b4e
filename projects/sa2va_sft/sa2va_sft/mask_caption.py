"""Mask-caption SFT for Sa2VA (seed 002's two-stage loop, rebuilt so that every loss reaches trainable weights).

The seed's loop: stage 1, image + region mask → caption; stage 2, another frame (or the same image) + that caption
→ mask, "IoU(mask', mask)" as the loss, with the EMA model producing the mask. As written nothing trains: the EMA
model gets no gradient and the caption is discrete. The loop here keeps the intent — captions good enough to find
the region again — with losses that do reach the student:

* **stage 1 (no grad):** the captioner (the EMA teacher by default, or the student) describes each region without a
  ground-truth text: Sa2VA's ``<vp>`` region prompt + :data:`REGION_CAPTION_QUESTION`, greedy decoding, batched
  (left-padded) with a KV cache. Each caption is then checked by the teacher: it segments the other view from the
  caption (teacher-forced ``"It is [SEG]."``, the path stage 2 trains) and the caption is **accepted** when the IoU
  with the ground truth is ≥ ``accept_iou`` (rejection-sampling SFT).
* **stage 2 (student):** the other view + the text (the ground-truth expression when the sample has one — RefCOCO
  —, else the generated caption) → ``[SEG]`` → ``text_hidden_fcs`` → SAM2's mask decoder; loss point-sampled BCE
  2.0 + Dice 0.5 + IoU 1.0 (the seed's weights; Sa2VA's point sampling) plus Sa2VA's answer-token CE (the student
  keeps answering with ``[SEG]``). ``stage2_captions='all'`` trains it on every caption (a batch whose captions
  are all rejected still trains stage 2), ``'accepted'`` only on accepted ones.
* **caption LM loss (student):** teacher-forced likelihood of the accepted captions (and of the ground-truth
  expressions) given image + region prompt, weight 1.0 — how captions improve.

Logged besides the losses: ``caption_accept`` (share of generated captions accepted), ``caption_iou`` (their mean
teacher IoU), ``caption_words``, ``stage1_s`` (seconds spent in stage 1 this step) and ``stage2_iou`` (the
student's IoU on the stage-2 masks).

Evaluation (``predict``): the student captions the region of the caption view and segments the other view from its
own caption by generation (Sa2VA's inference path). ``pred_masks`` / ``gt_masks`` are scored by
``ReferringSegMetric`` (the re-segmentation IoU, the loop's own criterion); the caption goes to ``pred_texts``
(``RegionCaptionMetric`` compares it with reference expressions when the data has them).
"""
from __future__ import annotations

import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, nullcontext
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ovseg.registry import MODELS

from .language import (
    ANSWER_LIST,
    EVAL_SEG_QUESTION,
    IMAGE_PLACEHOLDER,
    encode_conversation,
    expand_image_tokens,
    stop_token_ids,
)
from .language_model import greedy_generate_with_seg
from .losses import sa2va_mask_losses
from .region_prompts import insert_region_text, region_cells, region_text, region_tokens
from .sa2va import Sa2VA
from .transforms import referring_turns

#: The region-captioning question (Sa2VA's model card / ``predict_forward`` example for ``<vp>`` prompts).
REGION_CAPTION_QUESTION = '<image>\nPlease give me a short description of the region in the picture marked by region1.'
#: The seed's stage-2 weights: "CrossEntropy" (sigmoid BCE) 2.0, Dice 0.5, IoU 1.0; caption 1.0 (config.py).
MASK_CAPTION_MASK_LOSS = dict(mask_weight=2.0, dice_weight=0.5, iou_weight=1.0)
CAPTIONERS = ('ema', 'student')
STAGE2_CAPTIONS = ('all', 'accepted')


def mask_iou(logits: Tensor, gt: Tensor) -> Tensor:
    """IoU of ``logits > 0`` with binary ``gt`` (resized nearest to the logits' size), per mask; an empty union
    counts as 1."""
    target = F.interpolate(gt[:, None].float(), size=logits.shape[-2:], mode='nearest')[:, 0] > 0.5
    pred = logits > 0
    inter = (pred & target).flatten(1).sum(1).float()
    union = (pred | target).flatten(1).sum(1).float()
    return torch.where(union > 0, inter / union.clamp(min=1), torch.ones_like(union))


def left_pad(embeds: Sequence[Tensor]) -> tuple[Tensor, Tensor]:
    """(L_i, H) prompt embeddings → left-padded (B, L, H) batch and its attention mask (generation needs left
    padding: every prompt ends at the last column)."""
    length = max(int(e.shape[0]) for e in embeds)
    batch = embeds[0].new_zeros(len(embeds), length, embeds[0].shape[-1])
    mask = torch.zeros(len(embeds), length, dtype=torch.long, device=embeds[0].device)
    for i, e in enumerate(embeds):
        batch[i, length - e.shape[0]:] = e
        mask[i, length - e.shape[0]:] = 1
    return batch, mask


@MODELS.register_module()
class MaskCaptionSa2VA(Sa2VA):
    """Sa2VA trained with the mask-caption loop (module docstring); every :class:`Sa2VA` argument applies.

    Args:
        captioner: ``'ema'`` (the EMA teacher of ``TrainableEMAHook(decay=0.999)`` captions; the seed's choice) or
            ``'student'`` (the student captions in eval mode, no grad).
        accept_iou: a generated caption is trained as an SFT target when the teacher re-finds the region from it
            with IoU ≥ this (0.5: the usual "correct" threshold of referring segmentation, Pr@0.5).
        caption_loss_weight: weight of the caption LM loss (the seed's ``caption_loss_weight`` 1.0).
        mask_loss: stage-2 weights and point sampling (:data:`MASK_CAPTION_MASK_LOSS` over Sa2VA's sampling).
        answer_loss_weight: Sa2VA's CE on the stage-2 answer tokens (``"It is [SEG]."``; 1.0 as Sa2VA's llm_loss).
        stage2_captions: ``'all'`` or ``'accepted'`` (see the module docstring).
        caption_question: the stage-1 question (must contain ``<image>``; the region prompt follows the image).
        max_caption_tokens: generation budget of a caption.
        fallback_text: the stage-2 text when a generated caption is empty (``category_name`` first when the data
            has one).
    """

    def __init__(self, captioner: str = 'ema', accept_iou: float = 0.5, caption_loss_weight: float = 1.0,
                 mask_loss: Mapping[str, Any] | None = None, answer_loss_weight: float = 1.0,
                 stage2_captions: str = 'all', caption_question: str = REGION_CAPTION_QUESTION,
                 max_caption_tokens: int = 32, fallback_text: str = 'the object', **kwargs: Any) -> None:
        if captioner not in CAPTIONERS:
            raise ValueError(f'MaskCaptionSa2VA: captioner must be one of {CAPTIONERS}, got {captioner!r}')
        if stage2_captions not in STAGE2_CAPTIONS:
            raise ValueError(f'MaskCaptionSa2VA: stage2_captions must be one of {STAGE2_CAPTIONS}, '
                             f'got {stage2_captions!r}')
        if caption_question.count(IMAGE_PLACEHOLDER) != 1:
            raise ValueError(f'MaskCaptionSa2VA: caption_question needs exactly one {IMAGE_PLACEHOLDER!r}')
        if not 0.0 <= float(accept_iou) <= 1.0:
            raise ValueError(f'MaskCaptionSa2VA: accept_iou must be in [0, 1], got {accept_iou}')
        super().__init__(mask_loss=dict(MASK_CAPTION_MASK_LOSS, **(mask_loss or {})), **kwargs)
        self.captioner, self.accept_iou = captioner, float(accept_iou)
        self.caption_loss_weight, self.answer_loss_weight = float(caption_loss_weight), float(answer_loss_weight)
        self.stage2_captions, self.caption_question = stage2_captions, caption_question
        self.max_caption_tokens, self.fallback_text = int(max_caption_tokens), str(fallback_text)
        self.last_stage1: dict[str, Any] = {}

    # ------------------------------------------------------------------------------------------------ inputs
    @staticmethod
    def split_pair_inputs(inputs: Any) -> tuple[list[Tensor], list[Tensor | None], list[Tensor]]:
        """``(caption-view tiles, segmentation-view tiles or None when the views are one image, SAM2 input of the
        segmentation view)`` per sample, from per-sample dicts or ``pseudo_collate``'s dict of lists."""
        if isinstance(inputs, Mapping):
            return list(inputs['tiles']), list(inputs['tiles2']), list(inputs['sam'])
        return [x['tiles'] for x in inputs], [x['tiles2'] for x in inputs], [x['sam'] for x in inputs]

    def pair_visual_tokens(self, tiles: Sequence[Tensor], tiles2: Sequence[Tensor | None]) \
            -> tuple[list[Tensor], list[Tensor]]:
        """Visual tokens of both views in one vision pass (a shared view is encoded once)."""
        extra = [t for t in tiles2 if t is not None]
        visual = self.visual_tokens(list(tiles) + extra)
        first, rest = visual[:len(tiles)], iter(visual[len(tiles):])
        second = [first[i] if t is None else next(rest) for i, t in enumerate(tiles2)]
        return first, second

    def region_prompt(self, visual: Tensor, prompt_mask: Tensor) -> tuple[str, Tensor]:
        """The caption question with the region prompt after the image block, and the visual tokens for its
        ``<IMG_CONTEXT>`` slots (the image's, then the region's cells of the last tile)."""
        grid = int(round(self.tokens_per_tile ** 0.5))
        cells = region_cells(prompt_mask.to(visual.device).bool()[None], grid)
        question = expand_image_tokens(self.caption_question, int(visual.shape[0])).strip()
        question = insert_region_text(question, region_text(cells))
        tokens = torch.cat([visual, region_tokens(visual[-self.tokens_per_tile:], cells)])
        return question, tokens

    def _prompt_embeds(self, question: str, tokens: Tensor) -> Tensor:
        """(L, H) embeddings of one user turn (already expanded) ending with the assistant prefix."""
        bos = [self.tokenizer.bos_token_id] if self.tokenizer.bos_token_id is not None else []
        text = self.template['INSTRUCTION'].format(input=question, round=1)
        ids = torch.tensor([bos + self.tokenizer.encode(text, add_special_tokens=False)], device=tokens.device)
        return self.embed_with_images(ids, [tokens])[0]

    def _decode(self, ids: Tensor) -> str:
        """Generated ids → caption text: cut at the first stop token, special tokens dropped."""
        stops = {s for s in stop_token_ids(self.tokenizer, self.template) if isinstance(s, int)}
        out: list[int] = []
        for tok in ids.tolist():
            if tok in stops:
                break
            out.append(tok)
        text = self.tokenizer.decode(out, skip_special_tokens=True)
        return ' '.join(text.replace(IMAGE_PLACEHOLDER, ' ').split())

    # ------------------------------------------------------------------------------------------------ stage 1
    @contextmanager
    def _captioner(self) -> Iterator[None]:
        """The captioning model's weights in place, eval mode, no grad."""
        if self.captioner == 'ema':
            ema = getattr(self, 'ema_teacher', None)
            if ema is None:
                raise RuntimeError("MaskCaptionSa2VA(captioner='ema') needs the EMA teacher: add "
                                   "custom_hooks=[dict(type='TrainableEMAHook', decay=0.999)] (or captioner='student')")
            swap = ema.swapped()
        else:
            swap = _eval_mode(self)
        with torch.no_grad(), swap:
            yield

    def generate_captions(self, visual: Sequence[Tensor], prompt_masks: Sequence[Tensor]) -> list[str]:
        """Greedy captions of the regions (batched, left-padded, KV cache); call under the captioner's weights."""
        if not visual:
            return []
        embeds = [self._prompt_embeds(*self.region_prompt(v, m)) for v, m in zip(visual, prompt_masks)]
        batch, mask = left_pad(embeds)
        gen = greedy_generate_with_seg(self.language_model, batch, mask, self.token_ids['seg'],
                                       stop_token_ids(self.tokenizer, self.template),
                                       max_new_tokens=self.max_caption_tokens)
        return [self._decode(seq) for seq in gen.sequences]

    def segment_teacher_forced(self, visual: Sequence[Tensor], texts: Sequence[str], features: Mapping[str, Any],
                               index: Sequence[int], answer: str = ANSWER_LIST[0]) -> tuple[list[Tensor], Tensor]:
        """Mask logits for ``texts`` on the segmentation views ``index`` (into ``features``) with the answer
        teacher-forced: one LLM pass, no generation. Returns (masks per text, answer-token CE)."""
        turns = [[(EVAL_SEG_QUESTION.format(sent=t), answer)] for t in texts]
        return self._segment(visual, turns, features, index)

    def _segment(self, visual: Sequence[Tensor], turns: Sequence[Sequence[tuple[str, str]]],
                 features: Mapping[str, Any], index: Sequence[int]) -> tuple[list[Tensor], Tensor]:
        encoded = [encode_conversation(self.tokenizer, conv, self.template, num_image_tokens=int(v.shape[0]),
                                       max_length=self.max_length) for conv, v in zip(turns, visual)]
        hidden, input_ids, answer_ce = self.conversation_forward(encoded, visual)
        seg = self.seg_embeddings(hidden, input_ids)
        for i, s in enumerate(seg):
            if s.shape[0] != 1:
                raise ValueError(f'stage 2: conversation {i} has {s.shape[0]} [SEG] tokens, expected 1 (a text with '
                                 f'"[SEG]" in it, or cut by max_length={self.max_length}?)')
        one = _select_features(features, index)
        return self.grounding_encoder.decode(one, seg), answer_ce

    # ------------------------------------------------------------------------------------------------ training
    def loss(self, inputs: Any, data_samples: Sequence[Any]) -> dict[str, Tensor]:
        tiles, tiles2, sam = self.split_pair_inputs(inputs)
        prompt_masks = [ds.prompt_masks[0] for ds in data_samples]
        gts = [ds.gt_masks for ds in data_samples]
        expressions = [ds.metainfo.get('expression') for ds in data_samples]
        need = [i for i, e in enumerate(expressions) if not e]
        pixels = self.sam_pixels(sam)
        with torch.no_grad():  # SAM2's image encoder is frozen: one pass serves teacher and student
            encoded = self.grounding_encoder.encode_image(pixels)

        # stage 1: captions for regions without a ground-truth text, checked by the teacher
        start = time.perf_counter()
        captions: dict[int, str] = {}
        accepted: dict[int, bool] = {}
        teacher_iou = []
        if need:
            with self._captioner():
                teacher_features = self.grounding_encoder.image_features(pixels, encoded)
                vis_a, vis_b = self.pair_visual_tokens([tiles[i] for i in need], [tiles2[i] for i in need])
                texts = self.generate_captions(vis_a, [prompt_masks[i] for i in need])
                check = [k for k, t in enumerate(texts) if t]
                if check:
                    masks, _ = self.segment_teacher_forced([vis_b[k] for k in check], [texts[k] for k in check],
                                                           teacher_features, [need[k] for k in check])
                    for k, m in zip(check, masks):
                        iou = float(mask_iou(m, gts[need[k]].to(m.device))[0])
                        teacher_iou.append(iou)
                        accepted[need[k]] = iou >= self.accept_iou
            for k, i in enumerate(need):
                captions[i] = texts[k]
                accepted.setdefault(i, False)
        stage1_s = time.perf_counter() - start
        # kept for inspection (hooks, tests, debugging): what stage 1 produced on the last training batch
        self.last_stage1 = dict(captions=dict(captions), accepted=dict(accepted), teacher_iou=list(teacher_iou))

        # the student's passes (the mask decoder's conv_s0 / conv_s1 on the high-res levels train)
        features = self.grounding_encoder.image_features(pixels, encoded)
        vis_a, vis_b = self.pair_visual_tokens(tiles, tiles2)
        stage2 = []
        for i, expr in enumerate(expressions):
            if expr:
                stage2.append((i, expr))
            elif self.stage2_captions == 'all' or accepted[i]:
                meta_name = data_samples[i].metainfo.get('category_name')
                stage2.append((i, captions[i] or meta_name or self.fallback_text))
        losses = self._stage2_losses(vis_b, stage2, features, gts)
        sft = [(i, expr) for i, expr in enumerate(expressions) if expr]
        sft += [(i, captions[i]) for i in need if accepted[i]]
        losses['loss_caption'] = self.caption_loss_weight * self._caption_lm_loss(vis_a, prompt_masks, sft)
        device = losses['loss_caption'].device
        generated = len(need)
        losses['caption_accept'] = torch.tensor(sum(accepted[i] for i in need) / generated if generated else 0.0,
                                                device=device)
        losses['caption_iou'] = torch.tensor(float(np.mean(teacher_iou)) if teacher_iou else 0.0, device=device)
        losses['caption_words'] = torch.tensor(
            float(np.mean([len(captions[i].split()) for i in need])) if need else 0.0, device=device)
        losses['stage1_s'] = torch.tensor(stage1_s, device=device)
        return losses

    def _stage2_losses(self, visual: Sequence[Tensor], items: Sequence[tuple[int, str]],
                       features: Mapping[str, Any], gts: Sequence[Tensor]) -> dict[str, Tensor]:
        if not items:
            zero = self._zero()
            out = sa2va_mask_losses(zero.new_zeros(0, 1, 1), zero.new_zeros(0, 1, 1), **self.mask_loss)
            out = {k: v + zero for k, v in out.items()}
            out['loss_answer'] = zero.clone()
            out['stage2_iou'] = zero.detach().clone()
            return out
        turns = [referring_turns([text], train=True) for _, text in items]
        masks, answer_ce = self._segment([visual[i] for i, _ in items], turns, features, [i for i, _ in items])
        pred = torch.cat(masks)
        target = torch.cat([F.interpolate(gts[i][:, None].float().to(pred.device), size=pred.shape[-2:],
                                          mode='nearest')[:, 0] for i, _ in items])
        out = sa2va_mask_losses(pred, target, **self.mask_loss)
        out['loss_answer'] = self.answer_loss_weight * answer_ce
        out['stage2_iou'] = mask_iou(pred.detach(), target).mean()
        return out

    def _caption_lm_loss(self, visual: Sequence[Tensor], prompt_masks: Sequence[Tensor],
                         items: Sequence[tuple[int, str]]) -> Tensor:
        """Teacher-forced CE of the captions given image + region prompt (0 — in the graph — without any)."""
        if not items:
            return self._zero()
        encoded, tokens = [], []
        for i, text in items:
            question, tok = self.region_prompt(visual[i], prompt_masks[i])
            encoded.append(encode_conversation(self.tokenizer, [(question, text)], self.template,
                                               max_length=self.max_length))
            tokens.append(tok)
        _, _, ce = self.conversation_forward(encoded, tokens)
        return ce

    def _zero(self) -> Tensor:
        """A zero that depends on every trainable parameter of the stage-2 path (DDP sees them all used)."""
        return sum(p.sum() for p in self.text_hidden_fcs.parameters()) * 0.0

    # ------------------------------------------------------------------------------------------------ inference
    @torch.no_grad()
    def predict(self, inputs: Any, data_samples: Sequence[Any]) -> list[Any]:
        """Caption each region, then segment the other view from the caption by generation (re-segmentation)."""
        tiles, tiles2, sam = self.split_pair_inputs(inputs)
        vis_a, vis_b = self.pair_visual_tokens(tiles, tiles2)
        captions = self.generate_captions(vis_a, [ds.prompt_masks[0] for ds in data_samples])
        features = self.grounding_encoder.image_features(self.sam_pixels(sam))
        texts = [c or ds.metainfo.get('category_name') or self.fallback_text for c, ds in zip(captions, data_samples)]
        embeds = [self._prompt_embeds(expand_image_tokens(EVAL_SEG_QUESTION.format(sent=t), int(v.shape[0])).strip(),
                                      v) for t, v in zip(texts, vis_b)]
        batch, mask = left_pad(embeds)
        gen = greedy_generate_with_seg(self.language_model, batch, mask, self.token_ids['seg'],
                                       stop_token_ids(self.tokenizer, self.template),
                                       max_new_tokens=self.max_new_tokens)
        for i, ds in enumerate(data_samples):
            h, w = ds.metainfo['ori_shape'][:2]
            states = gen.seg_hidden_states[i]
            if states.shape[0] == 0:
                pred = torch.zeros(1, h, w, dtype=torch.bool, device=vis_b[i].device)
            else:
                low = self.grounding_encoder.decode(_select_features(features, [i]),
                                                    [self.text_hidden_fcs(states[:1])])[0]
                pred = F.interpolate(low[:, None], size=(h, w), mode='bilinear', align_corners=False)[:, 0] > 0
            ds.pred_masks = pred
            ds.set_metainfo(dict(pred_texts=[captions[i]]))
        return list(data_samples)


def _select_features(features: Mapping[str, Any], index: Sequence[int]) -> dict[str, Any]:
    """The SAM2 decoder inputs (image embedding + high-res features) of the images ``index``."""
    idx = torch.as_tensor(list(index), dtype=torch.long, device=features['image_embed'].device)
    return dict(image_embed=features['image_embed'][idx],
                high_res_features=[f[idx] for f in features['high_res_features']])


@contextmanager
def _eval_mode(model: torch.nn.Module) -> Iterator[None]:
    """Eval mode for the duration (dropout off for captioning), every module's mode restored afterwards."""
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        with nullcontext():
            yield
    finally:
        for module, mode in modes:
            module.training = mode
