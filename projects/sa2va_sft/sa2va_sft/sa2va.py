"""Sa2VA (InternVL-family MLLM + SAM2, ByteDance 2025) as an ovseg model, with the release's attribute names.

``vision_model`` (InternViT) → ``mlp1`` (pixel shuffle 0.5 + MLP) → image tokens placed at the ``<IMG_CONTEXT>``
slots of the conversation → ``language_model`` (Qwen2 / Qwen3 / Llama) → the last-layer hidden state of every
``[SEG]`` token → ``text_hidden_fcs`` → appended to the sparse prompt of ``grounding_encoder.sam2_model``'s mask
decoder (one padding point; of SAM2's 3 masks the one with the best predicted IoU) → low-resolution mask logits.

Training (referring-segmentation SFT, Sa2VA's losses, v1 ``configs/sa2va_4b.py``): ``llm_loss`` (next-token CE on the
answers, weight 1) + ``loss_mask`` (point-sampled sigmoid CE, 2.0) + ``loss_dice`` (0.5). Which parameters train
is declared in the config (``peft`` LoRA on the LLM, ``trainable_params``: ``configs/sa2va_sft/_base_/
sa2va_trainable.py``); with
``train_new_token_rows_only`` the embedding and ``lm_head`` rows of pre-existing tokens get no gradient, so only
the rows of the tokens Sa2VA adds learn (give those parameters no weight decay so they stay bit-identical).

Inference (``predict``): one prompt per expression (Sa2VA's RefCOCO evaluation question), greedy generation with
a KV cache; the first generated ``[SEG]`` becomes the mask (sigmoid > 0.5 at the original size), no ``[SEG]`` → an
empty mask (LISA / Sa2VA evaluation rule). ``pred_masks`` and the generated text go into the data sample.
"""
from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from mmengine.model import BaseModel
from PIL import Image
from torch import Tensor, nn

from ovseg.registry import MODELS

from .grounding_encoder import SA2VA_PROMPT_FRAMES as VIDEO_PROMPT_FRAMES
from .grounding_encoder import SA2VA_SAM2_CONFIG, SAM2GroundingEncoder
from .image_tiling import normalize_tiles, preprocess_image
from .intern_vit import InternVisionConfig, InternVisionModel
from .language import (
    IGNORE_INDEX,
    add_sa2va_tokens,
    build_toy_tokenizer,
    collate_conversations,
    encode_conversation,
    expand_image_tokens,
    get_template,
    load_release_tokenizer,
    stop_token_ids,
)
from .language_model import build_language_model, greedy_generate_with_seg
from .losses import SA2VA_MASK_LOSS, sa2va_mask_losses
from .projector import build_mlp1, extract_visual_tokens, num_image_tokens
from .region_prompts import insert_region_text, masks_tensor, region_cells, region_text, region_tokens


def build_tokenizer(cfg: Mapping[str, Any]) -> Any:
    """``dict(type='words', words=[...])`` (in-memory word-level tokenizer: CPU toys), ``dict(type='toy_referring')``
    (the words of ToyScenes referring expressions) or ``dict(type='pretrained', path=folder)`` (a local release)."""
    cfg = dict(cfg)
    kind = cfg.pop('type', None)
    if kind == 'words':
        return build_toy_tokenizer(cfg['words'])
    if kind == 'toy_referring':
        from ovseg.datasets.toy_referring import toy_referring_words
        return build_toy_tokenizer(toy_referring_words())
    if kind == 'pretrained':
        return load_release_tokenizer(cfg['path'])
    raise ValueError(f"tokenizer type must be 'words', 'toy_referring' or 'pretrained', got {kind!r}")


@MODELS.register_module()
class Sa2VA(BaseModel):
    """Sa2VA for referring segmentation.

    Args:
        vision_config: InternViT config (a release ``config.json``'s ``vision_config``).
        llm_config: causal-LM config (``llm_config``); ``vocab_size`` defaults to the tokenizer's size.
        grounding_encoder: :class:`SAM2GroundingEncoder` arguments (``sam2_cfg``: Hiera-L hydra name, an argument
            tree, or ``'tiny'`` for :data:`~.grounding_encoder.TINY_SAM2`; ``checkpoint``: Meta's
            ``sam2_hiera_large.pt``).
        tokenizer: see :func:`build_tokenizer`.
        template: chat template (``qwen_chat``: every v2 config).
        downsample_ratio / select_layer / ps_version: the release config's values (0.5 / -1 / 'v2').
        mask_loss: overrides of :data:`~.losses.SA2VA_MASK_LOSS` (weights 2.0 / 0.5, 12544 points, 3.0, 0.75).
        llm_loss_weight: weight of the answer-token CE (Sa2VA: 1, unweighted).
        max_length: conversation token budget (Sa2VA: 8192).
        max_new_tokens: generation budget at inference (Sa2VA's ``predict_forward``: 2048; toys use fewer).
        train_new_token_rows_only: mask the gradient of pre-existing token rows of the embeddings and ``lm_head``.
        gradient_checkpointing: recompute the LLM's and the ViT's activations in the backward pass (memory for
            time; Sa2VA's large models train with it).
        release: a released Sa2VA HF folder to load every weight from (``config.json`` settings override the
            arguments above; see :meth:`load_release`).
    """

    def __init__(self,
                 vision_config: Mapping[str, Any] | None = None,
                 llm_config: Mapping[str, Any] | None = None,
                 grounding_encoder: Mapping[str, Any] | None = None,
                 tokenizer: Mapping[str, Any] | None = None,
                 template: str = 'qwen_chat',
                 downsample_ratio: float = 0.5,
                 select_layer: int = -1,
                 ps_version: str = 'v2',
                 mask_loss: Mapping[str, Any] | None = None,
                 llm_loss_weight: float = 1.0,
                 max_length: int = 8192,
                 max_new_tokens: int = 2048,
                 min_dynamic_patch: int = 1,
                 max_dynamic_patch: int = 12,
                 train_new_token_rows_only: bool = True,
                 gradient_checkpointing: bool = False,
                 release: str | None = None,
                 data_preprocessor: dict | None = None,
                 init_cfg: dict | None = None) -> None:
        super().__init__(data_preprocessor=data_preprocessor or dict(type='BaseDataPreprocessor'), init_cfg=init_cfg)
        release_cfg: dict[str, Any] = {}
        if release is not None:
            from .release_names import CONFIG_FILE, read_release_json
            release_cfg = read_release_json(os.path.join(os.fspath(release), CONFIG_FILE), 'release config')
            vision_config = release_cfg['vision_config']
            llm_config = release_cfg['llm_config']
            template = release_cfg.get('template', template)
            downsample_ratio = float(release_cfg.get('downsample_ratio', downsample_ratio))
            select_layer = int(release_cfg.get('select_layer', select_layer))
            ps_version = release_cfg.get('ps_version', ps_version)
            tokenizer = tokenizer or dict(type='pretrained', path=release)
            grounding_encoder = release_cfg.get('ovseg_grounding_encoder', grounding_encoder)
        if vision_config is None or llm_config is None or tokenizer is None:
            raise ValueError('Sa2VA needs vision_config, llm_config and tokenizer (or a release folder)')
        self.tokenizer = build_tokenizer(tokenizer)
        self.template = get_template(template)
        self.template_name = template if isinstance(template, str) else 'custom'
        self.vision_model = InternVisionModel(InternVisionConfig.from_dict(dict(vision_config)))
        llm_cfg = dict(llm_config)
        llm_cfg.setdefault('vocab_size', len(self.tokenizer))
        self.language_model = build_language_model(llm_cfg)
        old_vocab = int(self.language_model.get_input_embeddings().weight.shape[0])
        self.token_ids = add_sa2va_tokens(self.tokenizer, self.language_model)
        llm_hidden = int(self.language_model.config.hidden_size)
        vit = self.vision_model.config
        self.mlp1 = build_mlp1(vit.hidden_size, llm_hidden, downsample_ratio)
        ge = dict(grounding_encoder or {})
        self.sam2_cfg = ge.get('sam2_cfg', SA2VA_SAM2_CONFIG)
        self.grounding_encoder = SAM2GroundingEncoder(**ge)
        d_model = self.grounding_encoder.d_model
        self.text_hidden_fcs = nn.Sequential(nn.Linear(llm_hidden, llm_hidden), nn.ReLU(inplace=True),
                                             nn.Linear(llm_hidden, d_model), nn.Dropout(0.0))
        self.downsample_ratio, self.select_layer, self.ps_version = downsample_ratio, select_layer, ps_version
        self.tokens_per_tile = num_image_tokens(vit.image_size, vit.patch_size, downsample_ratio)
        self.mask_loss = dict(SA2VA_MASK_LOSS, **(mask_loss or {}))
        self.llm_loss_weight = float(llm_loss_weight)
        self.max_length, self.max_new_tokens = int(max_length), int(max_new_tokens)
        self.min_dynamic_patch, self.max_dynamic_patch = int(min_dynamic_patch), int(max_dynamic_patch)
        self.image_size = int(vit.image_size)
        self._old_vocab = min(old_vocab, min(self.token_ids.values()))
        if train_new_token_rows_only:
            self._mask_old_token_rows()
        if gradient_checkpointing:
            self.language_model.gradient_checkpointing_enable()
            self.vision_model.set_gradient_checkpointing(True)
        if release is not None:
            self.load_release(release)

    # ------------------------------------------------------------------------------------------------ setup
    def _mask_old_token_rows(self) -> None:
        """Gradient hooks that zero the rows of tokens that existed before Sa2VA's were added."""
        rows = self._old_vocab
        params = {id(p): p for p in (self.language_model.get_input_embeddings().weight,
                                     self.language_model.get_output_embeddings().weight)}

        def hook(grad: Tensor) -> Tensor:
            grad = grad.clone()
            grad[:rows] = 0
            return grad

        for p in params.values():
            p.register_hook(hook)

    def load_release(self, folder: str | os.PathLike) -> dict[str, Any]:
        """Load every tensor of a released Sa2VA folder (release names → ours); returns the per-part report and
        raises when a part is missing tensors (a partial load would leave random weights)."""
        from .release_names import read_release_state_dict, release_to_ovseg_state_dict
        _, release_sd = read_release_state_dict(folder)
        state, _ = release_to_ovseg_state_dict(release_sd)
        own = self.state_dict()
        bad = [f'{k}: {tuple(v.shape)} vs {tuple(own[k].shape)}' for k, v in state.items()
               if k in own and tuple(v.shape) != tuple(own[k].shape)]
        if bad:
            raise ValueError(f'{folder}: {len(bad)} tensor(s) of another shape than the model: {bad[:5]}')
        result = self.load_state_dict({k: v.to(own[k].dtype) for k, v in state.items() if k in own}, strict=False)
        unexpected = sorted(set(state) - set(own))
        if result.missing_keys:
            raise ValueError(f'{folder}: {len(result.missing_keys)} model tensor(s) absent from the release, e.g. '
                             f'{result.missing_keys[:5]}')
        return dict(loaded=len(state) - len(unexpected), unexpected=unexpected)

    # ------------------------------------------------------------------------------------------------ pieces
    @staticmethod
    def split_inputs(inputs: Any) -> tuple[list[Tensor], list[Tensor]]:
        """``(tiles per sample, SAM image per sample)`` from a list of per-sample dicts or from mmengine's
        ``pseudo_collate`` output (a dict of lists)."""
        if isinstance(inputs, Mapping):
            return list(inputs['tiles']), list(inputs['sam'])
        return [x['tiles'] for x in inputs], [x['sam'] for x in inputs]

    def visual_tokens(self, tiles: Sequence[Tensor]) -> list[Tensor]:
        """Per sample: (tiles · tokens_per_tile, H) LLM input embeddings of its image tiles."""
        counts = [int(t.shape[0]) for t in tiles]
        feats = extract_visual_tokens(self.vision_model, self.mlp1, torch.cat(list(tiles)), self.select_layer,
                                      self.downsample_ratio, self.ps_version)
        return [f.reshape(-1, f.shape[-1]) for f in feats.split(counts)]

    def embed_with_images(self, input_ids: Tensor, visual: Sequence[Tensor]) -> Tensor:
        """Token embeddings with every ``<IMG_CONTEXT>`` slot replaced by the sample's visual tokens, in order."""
        embeds = self.language_model.get_input_embeddings()(input_ids)
        slots = input_ids == self.token_ids['img_context']
        per_row = slots.sum(1).tolist()
        for i, (n, vis) in enumerate(zip(per_row, visual)):
            if n != vis.shape[0]:
                raise ValueError(f'sample {i}: {n} <IMG_CONTEXT> slots for {vis.shape[0]} visual tokens')
        flat = torch.cat([v for v in visual]).to(embeds.dtype)
        return embeds.masked_scatter(slots[..., None], flat)

    def sam_pixels(self, sam: Sequence[Tensor]) -> Tensor:
        """uint8 3×S×S images (already resized by the pipeline) → normalised float batch."""
        enc = self.grounding_encoder
        x = torch.stack(list(sam)).to(device=enc.pixel_mean.device, dtype=torch.float32) / 255.0
        return (x - enc.pixel_mean) / enc.pixel_std

    def seg_embeddings(self, hidden: Tensor, input_ids: Tensor) -> list[Tensor]:
        """Per sample: ``text_hidden_fcs`` of the last-layer states at its ``[SEG]`` tokens (in order)."""
        seg = input_ids == self.token_ids['seg']
        projected = self.text_hidden_fcs(hidden[seg])
        return list(projected.split(seg.sum(1).tolist()))

    def conversation_forward(self, encoded: Sequence[Mapping[str, Tensor]], visual: Sequence[Tensor]) \
            -> tuple[Tensor, Tensor, Tensor]:
        """One LLM pass over ``encode_conversation`` outputs (right-padded, image tokens placed): returns the
        last-layer hidden states, the input ids and the next-token CE on the supervised (answer) tokens."""
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        batch = collate_conversations(encoded, pad)
        device = visual[0].device
        input_ids, labels = batch['input_ids'].to(device), batch['labels'].to(device)
        embeds = self.embed_with_images(input_ids, visual)
        out = self.language_model(inputs_embeds=embeds, attention_mask=batch['attention_mask'].to(device),
                                  output_hidden_states=True, return_dict=True)
        logits = out.logits[:, :-1].float()
        ce = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels[:, 1:].reshape(-1),
                             ignore_index=IGNORE_INDEX)
        return out.hidden_states[-1], input_ids, ce

    # ------------------------------------------------------------------------------------------------ training
    def loss(self, inputs: Any, data_samples: Sequence[Any]) -> dict[str, Tensor]:
        tiles, sam = self.split_inputs(inputs)
        visual = self.visual_tokens(tiles)
        encoded = [encode_conversation(self.tokenizer, ds.metainfo['conversation'], self.template,
                                       num_image_tokens=int(v.shape[0]), max_length=self.max_length)
                   for ds, v in zip(data_samples, visual)]
        hidden, input_ids, llm_loss = self.conversation_forward(encoded, visual)
        device = visual[0].device
        seg = self.seg_embeddings(hidden, input_ids)
        features = self.grounding_encoder.image_features(self.sam_pixels(sam))
        masks = self.grounding_encoder.decode(features, seg)
        gts = []
        for i, (m, ds) in enumerate(zip(masks, data_samples)):
            gt = ds.gt_masks.to(device)
            if gt.shape[0] != m.shape[0]:
                raise ValueError(f"sample {i} ('{ds.metainfo.get('img_path')}'): {m.shape[0]} [SEG] tokens for "
                                 f'{gt.shape[0]} masks (a turn cut by max_length={self.max_length}?)')
            gts.append(F.interpolate(gt[:, None].float(), size=m.shape[-2:], mode='nearest')[:, 0])
        losses = sa2va_mask_losses(torch.cat(masks), torch.cat(gts), **self.mask_loss)
        losses['llm_loss'] = self.llm_loss_weight * llm_loss
        return losses

    # ------------------------------------------------------------------------------------------------ inference
    def encode_prompt(self, question: str, num_tokens: int) -> Tensor:
        """Token ids of one user turn (image block expanded) ending with the assistant prefix."""
        if '<image>' in question:
            question = expand_image_tokens(question, num_tokens).strip()
        ids = self.tokenizer.encode(self.template['INSTRUCTION'].format(input=question, round=1),
                                    add_special_tokens=False)
        bos = [self.tokenizer.bos_token_id] if self.tokenizer.bos_token_id is not None else []
        return torch.tensor(bos + ids, dtype=torch.long)

    @torch.no_grad()
    def predict(self, inputs: Any, data_samples: Sequence[Any]) -> list[Any]:
        tiles, sam = self.split_inputs(inputs)
        visual = self.visual_tokens(tiles)
        features = self.grounding_encoder.image_features(self.sam_pixels(sam))
        stops = stop_token_ids(self.tokenizer, self.template)
        for i, (ds, vis) in enumerate(zip(data_samples, visual)):
            h, w = ds.metainfo['ori_shape'][:2]
            masks, texts = [], []
            one = {k: [v[i:i + 1] for v in val] if isinstance(val, list) else val[i:i + 1]
                   for k, val in features.items() if k in ('image_embed', 'high_res_features')}
            for question, _ in ds.metainfo['conversation']:
                ids = self.encode_prompt(question, int(vis.shape[0])).to(vis.device)[None]
                embeds = self.embed_with_images(ids, [vis])
                gen = greedy_generate_with_seg(self.language_model, embeds, None, self.token_ids['seg'], stops,
                                               max_new_tokens=self.max_new_tokens)
                texts.append(self.tokenizer.decode(gen.sequences[0], skip_special_tokens=False))
                states = gen.seg_hidden_states[0]
                if states.shape[0] == 0:
                    masks.append(torch.zeros(h, w, dtype=torch.bool, device=vis.device))
                    continue
                emb = self.text_hidden_fcs(states[:1])
                low = self.grounding_encoder.decode(one, [emb])[0]
                full = F.interpolate(low[:, None], size=(h, w), mode='bilinear', align_corners=False)[0, 0]
                masks.append(full.sigmoid() > 0.5)
            ds.pred_masks = torch.stack(masks) if masks else torch.zeros(0, h, w, dtype=torch.bool)
            ds.set_metainfo(dict(pred_texts=texts))
        return list(data_samples)

    @torch.no_grad()
    def predict_forward(self, text: str, image: Image.Image | None = None,
                        video: Sequence[Image.Image] | None = None, max_new_tokens: int | None = None,
                        prompt_frames: int = VIDEO_PROMPT_FRAMES, mask_prompts: Any = None) -> dict[str, Any]:
        """The release's chat API: ``text`` (with ``<image>`` to show the image / video) → ``{'prediction': str,
        'prediction_masks': [bool array (frames, H, W) per generated [SEG]]}``.

        Image: InternVL tiling as in training. Video (Sa2VA's ``predict_forward``): only the first
        ``prompt_frames`` (5) frames go to the LLM, each as one resized tile (256 tokens, no tiling); every
        ``[SEG]`` prompts SAM2 on those frames and SAM2's memory propagates it over all frames. ``mask_prompts``
        (image only; (n, H, W) masks) adds Sa2VA's ``<vp>`` region prompts (:mod:`.region_prompts`), e.g. with
        "<image>\nPlease give me a short description of the region in the picture marked by region1."
        """
        if mask_prompts is not None and image is None:
            raise ValueError('predict_forward: mask_prompts need an image (Sa2VA supports them for images only)')
        if (image is None) == (video is None) and '<image>' in text:
            raise ValueError('predict_forward: give exactly one of image / video for a text with <image>')
        self.eval()
        device = self.mlp1[0].weight.device
        frames = [image] if image is not None else list(video or [])
        tiles, per_frame, num_frames = None, 0, 0
        if image is not None:
            tiles, _ = preprocess_image(image.convert('RGB'), self.min_dynamic_patch, self.max_dynamic_patch,
                                        self.image_size, True)
            per_frame, num_frames = tiles.shape[0] * self.tokens_per_tile, 1
        elif frames:
            keyframes = frames[:prompt_frames]
            tiles = normalize_tiles([f.convert('RGB') for f in keyframes], self.image_size)
            per_frame, num_frames = self.tokens_per_tile, len(keyframes)
        visual: list[Tensor] = []
        if tiles is not None and '<image>' in text:
            visual = self.visual_tokens([tiles.to(device)])
            question = expand_image_tokens(text, per_frame, num_frames).strip()
            if mask_prompts is not None:
                cells = region_cells(masks_tensor(mask_prompts).to(device), int(round(self.tokens_per_tile ** 0.5)))
                question = insert_region_text(question, region_text(cells))
                last_tile = visual[0][-self.tokens_per_tile:]
                visual = [torch.cat([visual[0], region_tokens(last_tile, cells)])]
        else:
            question = text.replace('<image>', '')
        prompt = self.template['INSTRUCTION'].format(input=question, round=1)
        bos = [self.tokenizer.bos_token_id] if self.tokenizer.bos_token_id is not None else []
        ids = torch.tensor([bos + self.tokenizer.encode(prompt, add_special_tokens=False)], device=device)
        embeds = self.embed_with_images(ids, visual) if visual else self.language_model.get_input_embeddings()(ids)
        gen = greedy_generate_with_seg(self.language_model, embeds, None, self.token_ids['seg'],
                                       stop_token_ids(self.tokenizer, self.template),
                                       max_new_tokens=max_new_tokens or self.max_new_tokens)
        prediction = self.tokenizer.decode(gen.sequences[0], skip_special_tokens=False)
        states = gen.seg_hidden_states[0]
        if states.shape[0] == 0 or not frames:
            return dict(prediction=prediction, prediction_masks=[])
        embeddings = self.text_hidden_fcs(states)
        arrays = [np.asarray(f.convert('RGB')) for f in frames]
        if image is not None:
            pixels = self.grounding_encoder.preprocess(arrays)
            low = self.grounding_encoder.decode(self.grounding_encoder.image_features(pixels), [embeddings])[0]
            h, w = arrays[0].shape[:2]
            masks = F.interpolate(low[:, None], size=(h, w), mode='bilinear', align_corners=False)[:, 0] > 0
            masks = masks[:, None]  # (n, 1 frame, H, W)
        else:
            masks = self.grounding_encoder.propagate_video(arrays, embeddings, prompt_frames=prompt_frames)
        return dict(prediction=prediction, prediction_masks=[m.cpu().numpy() for m in masks])

    def forward(self, inputs: Any, data_samples: Sequence[Any] | None = None, mode: str = 'tensor') -> Any:
        if mode == 'loss':
            return self.loss(inputs, data_samples)
        if mode == 'predict':
            return self.predict(inputs, data_samples)
        raise RuntimeError(f'Sa2VA supports loss and predict modes, got {mode!r}')
