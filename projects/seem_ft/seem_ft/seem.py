"""SEEM v1 (Zou et al., NeurIPS 2023) as an ovseg :class:`~ovseg.models.segmentors.MaskFormer`.

Source: SEEM v1.0 ``modeling/architectures/seem_model_v1.py`` (``GeneralizedSEEM``: ``forward_seg``,
``prepare_targets``, ``evaluate``, ``evaluate_grounding``, ``evaluate_interactive``), ``from_config`` for the loss
weights, ``configs/seem/focal{l,t}_unicl_lang_v1.yaml`` for the values.

Parts (attribute ← official prefix): ``backbone`` ← ``backbone`` (:class:`~ovseg.models.backbones.FocalNet`),
``pixel_decoder`` ← ``sem_seg_head.pixel_decoder`` (:class:`TransformerEncoderPixelDecoder`),
``transformer_decoder`` ← ``sem_seg_head.predictor`` (:class:`~projects.seem_ft.seem_ft.SEEMDecoder`),
``text_encoder`` ← ``sem_seg_head.predictor.lang_encoder`` (:class:`SEEMLanguageEncoder`, frozen as
``SOLVER.FIX_PARAM.lang_encoder``). ``criterion.empty_weight`` and ``dilation_kernel`` are not kept: the core
criterion derives the no-object weight from the logits, and the click dilation is only used by the interactive
training / evaluation loop.

* **Classes** come from the data (``set_vocabulary`` / ``VocabularyHook``); each class is encoded by its first
  name with SEEM's templates, ``'background'`` appended last as the no-object column. Training draws one random
  template per class every step (``get_text_embeddings(..., is_eval=False)``); inference averages all templates
  (cached until the vocabulary or the text encoder's weights change). ``num_classes`` (optional) is what the
  config expects of the *training* data; a different training vocabulary is an error.
* **Training** (``loss``): panoptic/instance targets (``gt_instances``) with mask CE 2 / BCE 5 / dice 5
  (no-object 0.1, 12544 points, deep supervision) through the core criterion, plus grounding when samples carry
  ``gt_groundings = InstanceData(masks=Bool[G,H,W], texts=list[str][, hashes])`` (``metainfo['mode']`` 'text'
  (default) or 'class'): every image's sentence tokens enter the decoder (SEEM ``forward_seg``), the grounding
  queries are matched and scored by :class:`SEEMGroundingLoss` (``loss_grounding_{ce,bce,dice}`` 0.4 / 1 / 1).
  **Spatial (interactive) training** (``spatial_training=dict(...)``, SEEM's ``SPATIAL.ENABLED``): each image
  draws visual prompts from up to ``max_candidate`` (10) GT masks (:mod:`.spatial_prompts`), runs
  ``randint(min_iter, max_iter)`` (0 and ``SPATIAL.MAX_ITER`` 5) rounds without gradients that each add a
  simulated click at the centre of the largest error region, and the final pass (with the spatial memories of the
  last round) trains the spatial queries through :class:`SEEMSpatialLoss` (``loss_spatial_{ce,bce,dice}``
  0.4 / 1 / 1) beside the panoptic and grounding losses (SEEM ``forward_seg``). Off by default, as in the public
  fine-tuning recipes.
* **Inference** (``predict``): panoptic / semantic / instance maps per ``test_cfg`` (MaskFormer's
  post-processing = SEEM's ``evaluate``), or, for referring samples (metainfo ``expressions``, packed by
  ``PackReferringInputs``), ``pred_masks`` N×H×W (one per expression): the tokens of all expressions of the image
  enter the decoder together and each expression takes the grounding query of highest ``vl_similarity`` (SEEM
  ``evaluate_grounding``), thresholded at logit 0. :meth:`predict_spatial` segments visual prompts (points,
  boxes, scribbles, masks) and :meth:`predict_grounding` sentences on one image.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from mmengine.structures import InstanceData
from torch import Tensor

from ovseg.models.segmentors.mask_former import MASK_FORMER_TEST_CFG, MaskFormer
from ovseg.models.utils.postprocess import sem_seg_postprocess
from ovseg.registry import MODELS
from ovseg.structures import SegDataSample

from .grounding_loss import normalize_emb
from .spatial_loss import SEEMSpatialLoss
from .spatial_prompts import next_click_prompts, sample_spatial_prompts

__all__ = ['SEEM', 'SEEM_CRITERION', 'SEEM_DATA_PREPROCESSOR', 'SEEM_PIXEL_MEAN', 'SEEM_PIXEL_STD', 'SEEM_SPATIAL_LOSS',
           'SEEM_SPATIAL_TRAINING', 'SEEM_TEST_CFG']

#: ``INPUT.PIXEL_MEAN`` / ``PIXEL_STD`` of the SEEM v1 yamls (ImageNet RGB, 0-255 scale).
SEEM_PIXEL_MEAN = (123.675, 116.28, 103.53)
SEEM_PIXEL_STD = (58.395, 57.12, 57.375)
#: SEEM's normalisation and ``SIZE_DIVISIBILITY 32``.
SEEM_DATA_PREPROCESSOR = dict(type='SegDataPreprocessor', mean=SEEM_PIXEL_MEAN, std=SEEM_PIXEL_STD, size_divisor=32)
#: ``MODEL.DECODER`` of ``focall_unicl_lang_v1.yaml``: CLASS_WEIGHT 2.0, MASK_WEIGHT 5.0, DICE_WEIGHT 5.0,
#: NO_OBJECT_WEIGHT 0.1, TRAIN_NUM_POINTS 12544, OVERSAMPLE_RATIO 3.0, IMPORTANCE_SAMPLE_RATIO 0.75,
#: DEEP_SUPERVISION True; grounding GCLASS 0.4 / GMASK 1.0 / GDICE 1.0, GROUNDING.TEXT_WEIGHT 2.0 / CLASS_WEIGHT 0.5;
#: the matcher costs are the mask weights (``HungarianMatcher(cost_class=CLASS_WEIGHT, ...)`` in from_config).
SEEM_CRITERION = dict(
    type='SetCriterion',
    matcher=dict(type='HungarianMatcher', cost_class=2.0, cost_mask=5.0, cost_dice=5.0, num_points=12544),
    losses=[dict(type='ClassCELoss', loss_weight=2.0, eos_coef=0.1),
            dict(type='MaskBCELoss', loss_weight=5.0),
            dict(type='MaskDiceLoss', loss_weight=5.0),
            dict(type='SEEMGroundingLoss', ce_weight=0.4, bce_weight=1.0, dice_weight=1.0, text_weight=2.0,
                 class_weight=0.5, cost_class=2.0, cost_mask=5.0, cost_dice=5.0, match_points=12544,
                 num_points=12544, oversample_ratio=3.0, importance_sample_ratio=0.75)],
    deep_supervision=True, num_points=12544, oversample_ratio=3.0, importance_sample_ratio=0.75)
#: ``MODEL.DECODER.TEST`` of the v1 yamls: SEMANTIC_ON / INSTANCE_ON / PANOPTIC_ON True, OVERLAP_THRESHOLD 0.8,
#: OBJECT_MASK_THRESHOLD 0.8 (the same as Mask2Former's); DETECTIONS_PER_IMAGE 100 (detectron2 default).
#: ``interactive_clicks`` > 0 adds SEEM's interactive evaluation (``evaluate_interactive``, ``STROKE_SAMPLER.EVAL``:
#: ``MAX_ITER`` 20 clicks, 'best' mode; an object stops getting clicks at IoU ≥ ``interactive_stop_iou`` 0.9).
SEEM_TEST_CFG: dict[str, Any] = dict(MASK_FORMER_TEST_CFG, interactive_clicks=0, interactive_stop_iou=0.9)
#: SEEM's spatial training (``train_seem_v1_focalt_enc6_fpn_dec10_lang_bs1_spatial_iter3.sh`` /
#: ``focal{l,t}_unicl_lang_v1.yaml``): ``STROKE_SAMPLER.MAX_CANDIDATE`` 10 in the training command (the yaml's 1 is
#: the evaluation value), ``SPATIAL.MAX_ITER`` 5, ``POINT.NUM_POINTS`` 20, ``DILATION`` 3, click while IoU < 0.925.
SEEM_SPATIAL_TRAINING: dict[str, Any] = dict(max_candidate=10, min_iter=0, max_iter=5, shape_probs=None,
                                             num_points=20, dilation=3, keep_iou=0.925)
#: the spatial loss term to add to the criterion's ``losses`` when spatial training is on (SCLASS 0.4 / SMASK 1.0 /
#: SDICE 1.0; COST_SPATIAL 5 / 2 / 2).
SEEM_SPATIAL_LOSS = dict(type='SEEMSpatialLoss', ce_weight=0.4, bce_weight=1.0, dice_weight=1.0, cost_class=5.0,
                         cost_mask=2.0, cost_dice=2.0, match_points=12544, num_points=12544, oversample_ratio=3.0,
                         importance_sample_ratio=0.75)

PointLike = Sequence[float]


@MODELS.register_module()
class SEEM(MaskFormer):
    """SEEM v1 segmentor (see the module doc).

    Args:
        backbone / pixel_decoder / transformer_decoder: configs (``FocalNet`` / ``TransformerEncoderPixelDecoder``
            / ``SEEMDecoder``; the decoder's ``in_channels`` / ``mask_dim`` are filled from the pixel decoder and
            its ``dim_proj`` from the text encoder).
        text_encoder: ``SEEMLanguageEncoder`` config (default: the full-size one, frozen).
        criterion: :data:`SEEM_CRITERION`-style config, ``None`` for an inference-only model.
        data_preprocessor: default :data:`SEEM_DATA_PREPROCESSOR`.
        num_classes: optional number of classes the training data must have.
        spatial_training: ``None`` (off) or overrides of :data:`SEEM_SPATIAL_TRAINING`: ``max_candidate``, click
            rounds drawn from [``min_iter``, ``max_iter``] (SEEM: [0, MAX_ITER]), ``shape_probs``
            {'point' | 'polygon' | 'scribble': p}, ``num_points``, ``dilation``, ``keep_iou``; needs a
            :class:`SEEMSpatialLoss` term in the criterion and a decoder with ``spatial``.
        Other arguments: as :class:`MaskFormer`.
    """

    default_test_cfg = SEEM_TEST_CFG

    def __init__(self, backbone: dict, pixel_decoder: dict, transformer_decoder: dict,
                 text_encoder: dict | None = None, criterion: dict | None = None,
                 data_preprocessor: dict | None = None, num_classes: int | None = None,
                 spatial_training: dict | None = None, **kwargs: Any) -> None:
        self.expected_num_classes = None if num_classes is None else int(num_classes)
        self._text_cache: dict[str, tuple[Any, Tensor]] = {}
        self._text_encoder_cfg = dict(text_encoder or dict(type='SEEMLanguageEncoder'))
        super().__init__(backbone, pixel_decoder, transformer_decoder, criterion=criterion,
                         text_encoder=self._text_encoder_cfg,
                         data_preprocessor=data_preprocessor or dict(SEEM_DATA_PREPROCESSOR), **kwargs)
        self.spatial_training = self._check_spatial_training(spatial_training)

    def _check_spatial_training(self, cfg: dict | None) -> dict[str, Any] | None:
        if cfg is None:
            return None
        unknown = set(cfg) - set(SEEM_SPATIAL_TRAINING)
        if unknown:
            raise ValueError(f'spatial_training: unknown keys {sorted(unknown)}; expected some of '
                             f'{sorted(SEEM_SPATIAL_TRAINING)}')
        cfg = {**SEEM_SPATIAL_TRAINING, **cfg}
        if not getattr(self.transformer_decoder, 'spatial_enabled', False):
            raise ValueError('spatial_training needs transformer_decoder.spatial=True (the spatial parameters)')
        if self.criterion is not None:
            terms = [t for t in self.criterion.losses if isinstance(t, SEEMSpatialLoss)]
            if not terms:
                raise ValueError('spatial_training needs a SEEMSpatialLoss term in criterion.losses '
                                 '(e.g. SEEM_SPATIAL_LOSS); without it the spatial queries would get no loss')
            if any(t.query_number != self.transformer_decoder.query_number for t in terms):
                raise ValueError(f'SEEMSpatialLoss.query_number must be the decoder\'s '
                                 f'{self.transformer_decoder.query_number}')
        if not 0 <= int(cfg['min_iter']) <= int(cfg['max_iter']) or int(cfg['max_candidate']) < 1:
            raise ValueError(f'spatial_training: 0 <= min_iter <= max_iter and max_candidate >= 1, got {cfg}')
        return cfg

    def _complete_decoder_cfg(self, cfg: dict) -> dict:
        cfg = super()._complete_decoder_cfg(cfg)
        dim = int(self.text_encoder.lang_proj.shape[1])
        if cfg.get('dim_proj') is None:
            cfg['dim_proj'] = dim
        elif int(cfg['dim_proj']) != dim:
            raise ValueError(f'transformer_decoder.dim_proj={cfg["dim_proj"]} but the text encoder projects to {dim}')
        return cfg

    # ------------------------------------------------------------------ vocabulary
    def _check_vocabulary(self, classes: list[tuple[str, ...]], split: str) -> None:
        if split == 'train' and self.expected_num_classes is not None and len(classes) != self.expected_num_classes:
            raise ValueError(f'SEEM: the config says num_classes={self.expected_num_classes} but the training data '
                             f'has {len(classes)} classes ({[c[0] for c in classes][:8]}...); fix num_classes or '
                             'the dataset (the class list always comes from the data)')

    def _vocabulary_changed(self, split: str) -> None:
        self._text_cache.pop(split, None)

    def _text_version(self) -> tuple:
        return tuple((p.data_ptr(), p._version, p.requires_grad) for p in self.text_encoder.parameters())

    def class_embeddings(self, split: str) -> Tensor:
        """(C+1)×dim_proj normalised class embeddings of the ``split`` vocabulary, ``'background'`` last."""
        names = [c[0] for c in self.require_vocabulary(split)['classes']]
        if self.training and split == 'train':
            with torch.set_grad_enabled(torch.is_grad_enabled() and self._text_trainable()):
                return self.text_encoder.class_embeddings(names, train=True)
        key = (tuple(names), self._text_version())
        cached = self._text_cache.get(split)
        if cached is None or cached[0] != key:
            self._text_cache[split] = (key, self.text_encoder.class_embeddings(names, train=False))
        return self._text_cache[split][1]

    def _text_trainable(self) -> bool:
        return any(p.requires_grad for p in self.text_encoder.parameters())

    def class_inputs(self, split: str) -> dict[str, Any]:
        return dict(class_embeddings=self.class_embeddings(split), lang_encoder=self.text_encoder)

    # ------------------------------------------------------------------ grounding inputs
    def encode_groundings(self, texts: Sequence[Sequence[str]], hashes: Sequence[Sequence[int] | None] | None = None
                          ) -> dict[str, Any] | None:
        """Sentences per image → decoder grounding tokens (SEEM ``prepare_targets`` / ``forward_seg``).

        Returns ``tokens`` B×T×D (the valid token embeddings of each image's sentences — of the first sentence
        per hash — concatenated, ``norm=False``), ``padding`` B×T (True = padding) and ``sentences`` (per image
        G×D EOT embeddings, SEEM's ``grounding_class_embs``); ``None`` when no image has a sentence.
        """
        flat = [t for ts in texts for t in ts]
        if not flat:
            return None
        with torch.set_grad_enabled(torch.is_grad_enabled() and self._text_trainable()):
            token_emb, attn, sentence = self.text_encoder.encode_tokens(flat, return_sentence=True)
        tokens, sentences, start = [], [], 0
        for b, ts in enumerate(texts):
            n = len(ts)
            emb, msk = token_emb[start:start + n], attn[start:start + n]
            sentences.append(sentence[start:start + n])
            start += n
            if n and hashes is not None and hashes[b] is not None:
                h = np.asarray(hashes[b]).reshape(-1)
                if len(h) != n:
                    raise ValueError(f'image {b}: {len(h)} grounding hashes for {n} sentences')
                keep = np.zeros(n, dtype=bool)
                keep[np.unique(h, return_index=True)[1]] = True
                keep_t = torch.from_numpy(keep).to(emb.device)
                emb, msk = emb[keep_t], msk[keep_t]
            tokens.append(emb[msk])
        padded = torch.nn.utils.rnn.pad_sequence(tokens, batch_first=True, padding_value=0.0)
        lengths = torch.tensor([len(t) for t in tokens], device=padded.device)
        padding = torch.arange(padded.shape[1], device=padded.device)[None] >= lengths[:, None]
        return dict(tokens=padded, padding=padding, sentences=sentences)

    # ------------------------------------------------------------------ decoding
    def decode(self, feats: dict[str, Any], split: str = 'train', class_inputs: dict[str, Any] | None = None,
               grounding: Mapping[str, Any] | None = None, spatial: Mapping[str, Sequence[Tensor]] | None = None,
               prev_mask: Tensor | None = None, generator: torch.Generator | None = None) -> dict[str, Any]:
        """Decoder outputs; ``grounding`` from :meth:`encode_groundings`, ``spatial`` = ``{'pos': [...],
        'neg': [...]}`` prompt masks (see :class:`SEEMDecoder`). ``class_inputs={}`` skips the class scores."""
        if class_inputs is None:
            class_inputs = self.class_inputs(split)
        outputs = self.transformer_decoder(
            feats['multi_scale_features'], feats['mask_features'], class_inputs=class_inputs,
            grounding_tokens=None if grounding is None else grounding['tokens'],
            grounding_padding_mask=None if grounding is None else grounding['padding'],
            spatial_prompts=spatial, prev_mask=prev_mask, generator=generator)
        if grounding is not None:
            for out in [outputs, *outputs['aux_outputs']]:
                out['grounding_similarity'] = self.text_encoder.vl_similarity
        return outputs

    # ------------------------------------------------------------------ training
    def grounding_targets(self, data_samples: Sequence[Any], batch_hw: tuple[int, int]
                          ) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
        """(decoder grounding inputs or None, per-image target entries for :class:`SEEMGroundingLoss`)."""
        texts, hashes, entries = [], [], []
        for ds in data_samples:
            gt = ds.get('gt_groundings')
            if gt is None or len(gt) == 0:
                texts.append([])
                hashes.append(None)
                entries.append(dict(grounding_masks=None))
                continue
            sentences = [str(t) for t in gt.texts]
            masks = torch.as_tensor(gt.masks).bool()
            if masks.shape[0] != len(sentences):
                raise ValueError(f'gt_groundings: {masks.shape[0]} masks for {len(sentences)} texts')
            h, w = masks.shape[-2:]
            if h > batch_hw[0] or w > batch_hw[1]:
                raise ValueError(f'gt_groundings masks {h}×{w} are larger than the batch input {batch_hw}')
            if (h, w) != tuple(batch_hw):
                masks = F.pad(masks, (0, batch_hw[1] - w, 0, batch_hw[0] - h), value=False)
            hash_ = gt.get('hashes')
            texts.append(sentences)
            hashes.append(None if hash_ is None else list(np.asarray(hash_).reshape(-1)))
            entries.append(dict(grounding_masks=masks, grounding_task=gt.metainfo.get('mode', 'text'),
                                grounding_hash=None if hash_ is None else torch.as_tensor(np.asarray(hash_))))
        grounding = self.encode_groundings(texts, hashes)
        if grounding is not None:
            for e, s in zip(entries, grounding['sentences']):
                if e['grounding_masks'] is not None:
                    e['grounding_class_embs'] = s
        return grounding, entries

    @torch.no_grad()
    def simulate_clicks(self, feats: dict[str, Any], gt_masks: Sequence[Tensor], pos: list[Tensor],
                        rounds: int) -> tuple[list[Tensor], list[Tensor], Tensor | None]:
        """SEEM's click rounds without gradients: decode the prompts, add a click where the selected mask is most
        wrong, repeat ``rounds`` times → (positive prompts, negative prompts, last ``prev_mask`` or None)."""
        neg = [torch.zeros_like(p) for p in pos]
        prev = None
        cfg = self.spatial_training
        for _ in range(rounds):
            out = self.decode(feats, 'train', class_inputs={}, spatial=dict(pos=pos, neg=neg), prev_mask=prev)
            prev = out['prev_mask']
            pos, neg = next_click_prompts(prev, gt_masks, pos, neg, dilation=int(cfg['dilation']),
                                          keep_iou=float(cfg['keep_iou']))
        return pos, neg, prev

    def spatial_targets(self, feats: dict[str, Any], targets: Sequence[dict[str, Tensor]]
                        ) -> tuple[dict[str, list[Tensor]], Tensor | None]:
        """Prompts of the training pass: the drawn shapes plus the simulated clicks; stores ``gt_spatial_masks``
        in ``targets`` → (``spatial`` decoder input, ``prev_mask`` of the last round or None)."""
        cfg = self.spatial_training
        draw = dict(num_points=int(cfg['num_points']))
        pos, gts = [], []
        for t in targets:
            p, g = sample_spatial_prompts(t['masks'], int(cfg['max_candidate']), cfg['shape_probs'], **draw)
            pos.append(p)
            gts.append(g)
            t['gt_spatial_masks'] = g
        rounds = int(torch.randint(int(cfg['min_iter']), int(cfg['max_iter']) + 1, (1,)))
        pos, neg, prev = self.simulate_clicks(feats, gts, pos, rounds)
        return dict(pos=pos, neg=neg), prev

    def loss(self, inputs: Tensor, data_samples: Sequence[Any]) -> dict[str, Tensor]:
        feats = self.extract_feat(inputs)
        targets = self.build_targets(data_samples)
        grounding, entries = self.grounding_targets(data_samples, tuple(inputs.shape[-2:]))
        spatial = prev_mask = None
        if self.spatial_training is not None:
            spatial, prev_mask = self.spatial_targets(feats, targets)
        outputs = self.decode(feats, 'train', grounding=grounding, spatial=spatial, prev_mask=prev_mask)
        for t, e in zip(targets, entries):
            t.update({k: v for k, v in e.items() if v is not None})
        losses = self.compute_losses(outputs, targets)
        losses.update(self.auxiliary_losses(feats, outputs, data_samples))
        return losses

    # ------------------------------------------------------------------ inference
    def predict(self, inputs: Tensor, data_samples: Sequence[Any] | None = None) -> list[Any]:
        """Panoptic / semantic / instance predictions, or referring masks for samples with ``expressions``."""
        if data_samples:
            referring = ['expressions' in ds.metainfo for ds in data_samples]
            if all(referring):
                return self.predict_referring(inputs, data_samples)
            if any(referring):
                raise ValueError('SEEM.predict: a batch mixes referring samples (metainfo "expressions") with '
                                 'others; use separate dataloaders')
        return super().predict(inputs, data_samples)

    def predict_from_features(self, feats: dict[str, Any], inputs: Tensor,
                              data_samples: Sequence[Any] | None = None) -> list[Any]:
        """MaskFormer's outputs, plus the interactive evaluation on the same features when it is on."""
        results = super().predict_from_features(feats, inputs, data_samples)
        if int(self.test_cfg['interactive_clicks']) > 0:
            self.predict_interactive(feats, inputs, results)
        return results

    # ------------------------------------------------------------------ interactive evaluation
    @staticmethod
    def interactive_targets(ds: Any, pad_hw: tuple[int, int]) -> Tensor:
        """Bool[n, Hp, Wp]: the sample's non-crowd panoptic segments at the input size (nearest), zero-padded."""
        if 'gt_panoptic_seg' not in ds:
            raise KeyError('interactive evaluation needs gt_panoptic_seg + segments_info in the data samples '
                           '(LoadPanopticAnnotations in the test pipeline)')
        pan = torch.as_tensor(ds.gt_panoptic_seg.data)
        pan = pan[0] if pan.dim() == 3 else pan
        h, w = tuple(ds.metainfo.get('img_shape', pan.shape))[:2]
        ids = [int(seg['id']) for seg in ds.metainfo.get('segments_info', []) if not seg.get('iscrowd', 0)]
        if tuple(pan.shape) != (h, w):
            pan = F.interpolate(pan[None, None].double(), size=(h, w), mode='nearest')[0, 0].long()
        masks = torch.stack([pan == i for i in ids]) if ids else torch.zeros(0, h, w, dtype=torch.bool)
        masks = masks[masks.flatten(1).any(1)]  # a segment the resize erased cannot be clicked
        return F.pad(masks, (0, pad_hw[1] - w, 0, pad_hw[0] - h), value=False)

    @torch.no_grad()
    def predict_interactive(self, feats: dict[str, Any], inputs: Tensor, data_samples: Sequence[Any]) -> None:
        """SEEM ``evaluate_interactive`` ('best' mode): per image, every GT segment is prompted at once; click 1 is
        the segment's most interior pixel, each later click the centre of the larger error region (as in training)
        while IoU < ``interactive_stop_iou``. Stores ``pred_interactive_ious`` Float[n, clicks] (IoU after each
        click at the input size; an object that stopped keeps its IoU) for :class:`InteractiveNoCMetric`. ``feats``:
        :meth:`extract_feat` of ``inputs`` (the batch), reused from the panoptic pass."""
        clicks = int(self.test_cfg['interactive_clicks'])
        stop = float(self.test_cfg['interactive_stop_iou'])
        pad_hw = tuple(inputs.shape[-2:])
        for b, ds in enumerate(data_samples):
            gt = self.interactive_targets(ds, pad_hw).to(inputs.device)
            h, w = tuple(ds.metainfo.get('img_shape', pad_hw))[:2]
            ious = torch.zeros(len(gt), clicks)
            if len(gt):
                image_feats = dict(multi_scale_features=[f[b:b + 1] for f in feats['multi_scale_features']],
                                   mask_features=feats['mask_features'][b:b + 1])
                generator = torch.Generator().manual_seed(0)  # SEEM's point / query draws, repeatable
                none = torch.full((1, len(gt), *pad_hw), -1.0, device=inputs.device)
                pos, neg = next_click_prompts(none, [gt], [torch.zeros_like(gt)], [torch.zeros_like(gt)],
                                              keep_iou=1.0)
                prev = None
                for k in range(clicks):
                    out = self.decode(image_feats, 'test', class_inputs={}, spatial=dict(pos=pos, neg=neg),
                                      prev_mask=prev, generator=generator)
                    prev = out['prev_mask']
                    pred = F.interpolate(prev, size=pad_hw, mode='bilinear', align_corners=False)[0] > 0
                    pred, real = pred[:, :h, :w], gt[:, :h, :w]  # the padding is not part of the image
                    inter = (pred & real).flatten(1).sum(1).float()
                    union = (pred | real).flatten(1).sum(1).float().clamp(min=1)
                    now = (inter / union).cpu()
                    ious[:, k] = torch.where(ious[:, k - 1] >= stop, ious[:, k - 1], now) if k else now
                    if bool((ious[:, k] >= stop).all()):
                        ious[:, k + 1:] = ious[:, k:k + 1]
                        break
                    pos, neg = next_click_prompts(prev, [gt], pos, neg, keep_iou=stop)
            ds.pred_interactive_ious = ious

    def predict_referring(self, inputs: Tensor, data_samples: Sequence[Any]) -> list[Any]:
        """``pred_masks`` (Bool[N, H, W] at ``ori_shape``) per sample, one per expression (SEEM
        ``evaluate_grounding``: argmax grounding query of ``vl_similarity`` per sentence)."""
        texts = [[str(t) for t in ds.metainfo['expressions']] for ds in data_samples]
        feats = self.extract_feat(inputs)
        grounding = self.encode_groundings(texts)
        batch_hw = tuple(inputs.shape[-2:])
        outputs = None if grounding is None else self.decode(feats, 'test', class_inputs={}, grounding=grounding)
        for b, ds in enumerate(data_samples):
            img_shape = tuple(ds.metainfo.get('img_shape', batch_hw))[:2]
            ori_shape = tuple(ds.metainfo.get('ori_shape', img_shape))[:2]
            if not texts[b]:
                ds.pred_masks = torch.zeros((0, *ori_shape), dtype=torch.bool)
                continue
            logits = self._grounding_mask_logits(outputs, grounding['sentences'][b], b)
            logits = F.interpolate(logits[None], size=batch_hw, mode='bilinear', align_corners=False)[0]
            ds.pred_masks = sem_seg_postprocess(logits, img_shape, *ori_shape) > 0
        return list(data_samples)

    def _grounding_mask_logits(self, outputs: dict[str, Any], sentences: Tensor, b: int) -> Tensor:
        v = normalize_emb(outputs['pred_gtexts'][b])
        t = normalize_emb(sentences.to(v))
        best = self.text_encoder.vl_similarity(v, t).argmax(dim=0)  # per sentence, the best grounding query
        return outputs['pred_gmasks'][b][best]

    def _prepare_image(self, image: np.ndarray | Tensor) -> tuple[Tensor, tuple[int, int]]:
        """H×W×3 uint8 RGB array or 3×H×W tensor → (1×3×Hp×Wp normalised, padded batch; (H, W))."""
        img = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1) if isinstance(image, np.ndarray) \
            else torch.as_tensor(image)
        if img.dim() != 3 or img.shape[0] != 3:
            raise ValueError(f'image must be H×W×3 (array) or 3×H×W (tensor) RGB, got {tuple(img.shape)}')
        hw = (int(img.shape[1]), int(img.shape[2]))
        ds = SegDataSample(metainfo=dict(img_shape=hw, ori_shape=hw))
        data = self.data_preprocessor(dict(inputs=[img], data_samples=[ds]), False)
        return data['inputs'], hw

    @torch.no_grad()
    def predict_grounding(self, image: np.ndarray | Tensor, texts: Sequence[str]) -> Tensor:
        """Bool[N, H, W]: the mask of each sentence on one image (same path as referring ``predict``)."""
        batch, hw = self._prepare_image(image)
        ds = SegDataSample(metainfo=dict(img_shape=hw, ori_shape=hw, expressions=list(texts)))
        return self.predict_referring(batch, [ds])[0].pred_masks

    @staticmethod
    def spatial_prompt_masks(image_hw: tuple[int, int], pad_hw: tuple[int, int],
                             points: Sequence[PointLike | Sequence[PointLike]] | None = None,
                             boxes: Sequence[Sequence[float]] | None = None,
                             scribbles: Sequence[np.ndarray | Tensor] | None = None,
                             masks: Sequence[np.ndarray | Tensor] | None = None, click_radius: int = 1) -> Tensor:
        """Visual prompts → Bool[ns, Hp, Wp] prompt masks at the padded size, in the order points, boxes,
        scribbles, masks.

        * a point ``(x, y)`` (pixels) is one prompt: a (2r+1)² square click (r = ``click_radius``; SEEM dilates its
          clicks with a 3×3 kernel); a list of points is one prompt with several clicks;
        * a box ``(x0, y0, x1, y1)`` is one prompt: the filled box (SEEM v1 has no box prompt; its region is used as
          a mask prompt — inferred, not SEEM's);
        * a scribble / mask is one prompt: its non-zero pixels (H×W, the image size).
        """
        h, w = image_hw
        out: list[Tensor] = []

        def canvas() -> Tensor:
            return torch.zeros(pad_hw, dtype=torch.bool)

        for item in points or []:
            group = [item] if len(item) == 2 and all(np.isscalar(v) or torch.is_tensor(v) for v in item) else item
            m = canvas()
            for x, y in group:
                x, y = int(round(float(x))), int(round(float(y)))
                if not (0 <= x < w and 0 <= y < h):
                    raise ValueError(f'point ({x}, {y}) is outside the {w}×{h} image')
                m[max(y - click_radius, 0):min(y + click_radius + 1, h),
                  max(x - click_radius, 0):min(x + click_radius + 1, w)] = True
            out.append(m)
        for box in boxes or []:
            if len(box) != 4:
                raise ValueError(f'a box is x0,y0,x1,y1, got {box}')
            x0, y0, x1, y1 = (int(round(float(v))) for v in box)
            x0, x1, y0, y1 = max(x0, 0), min(x1, w - 1), max(y0, 0), min(y1, h - 1)
            if x1 < x0 or y1 < y0:
                raise ValueError(f'box {tuple(box)} is empty inside the {w}×{h} image')
            m = canvas()
            m[y0:y1 + 1, x0:x1 + 1] = True
            out.append(m)
        for kind, items in (('scribble', scribbles), ('mask', masks)):
            for item in items or []:
                arr = torch.as_tensor(np.asarray(item)) != 0
                if tuple(arr.shape) != (h, w):
                    raise ValueError(f'a {kind} must be H×W = {h}×{w} (the image), got {tuple(arr.shape)}')
                if not arr.any():
                    raise ValueError(f'a {kind} prompt is empty')
                m = canvas()
                m[:h, :w] = arr
                out.append(m)
        if not out:
            raise ValueError('predict_spatial: give at least one of points / boxes / scribbles / masks')
        return torch.stack(out)

    @torch.no_grad()
    def predict_spatial(self, image: np.ndarray | Tensor,
                        points: Sequence[PointLike | Sequence[PointLike]] | None = None,
                        boxes: Sequence[Sequence[float]] | None = None,
                        scribbles: Sequence[np.ndarray | Tensor] | None = None,
                        masks: Sequence[np.ndarray | Tensor] | None = None, prev_mask: Tensor | None = None,
                        return_logits: bool = False, generator: torch.Generator | None = None) -> Tensor:
        """Segment visual prompts on one image → Bool[ns, H, W] at the image size (one mask per prompt, in the
        order of :meth:`spatial_prompt_masks`); ``return_logits`` gives the float logits instead.

        ``prev_mask`` (ns×H×W logits of an earlier call) switches on SEEM's spatial memories (multi-round
        interaction). Point and query draws are random as in SEEM; ``generator`` makes them repeatable.
        """
        batch, hw = self._prepare_image(image)
        pad_hw = tuple(batch.shape[-2:])
        prompts = self.spatial_prompt_masks(hw, pad_hw, points, boxes, scribbles, masks).to(batch.device)
        prev = None
        if prev_mask is not None:
            prev = torch.as_tensor(prev_mask, dtype=batch.dtype, device=batch.device)
            if tuple(prev.shape) != (prompts.shape[0], *hw):
                raise ValueError(f'prev_mask must be {prompts.shape[0]}×{hw[0]}×{hw[1]}, got {tuple(prev.shape)}')
            prev = F.pad(prev, (0, pad_hw[1] - hw[1], 0, pad_hw[0] - hw[0]), value=-100.0)[None]
        feats = self.extract_feat(batch)
        outputs = self.decode(feats, 'test', class_inputs={}, spatial=dict(pos=[prompts]), prev_mask=prev,
                              generator=generator)
        logits = F.interpolate(outputs['prev_mask'], size=pad_hw, mode='bilinear', align_corners=False)[0]
        logits = logits[:, :hw[0], :hw[1]]
        return logits if return_logits else logits > 0


def groundings(masks: Tensor | np.ndarray, texts: Sequence[str], hashes: Sequence[int] | None = None,
               mode: str = 'text') -> InstanceData:
    """Build the ``gt_groundings`` field SEEM trains on (a helper for pipelines and tests)."""
    data = InstanceData(metainfo=dict(mode=mode))
    data.masks = torch.as_tensor(np.asarray(masks)).bool()
    data.texts = list(texts)
    if hashes is not None:
        data.hashes = torch.as_tensor(list(hashes))
    return data
