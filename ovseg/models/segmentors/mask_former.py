"""The mask-classification segmentor (MaskFormer / Mask2Former): the base every ovseg segmentor builds on.

Data flow:

* ``extract_feat``: backbone → feature maps; the pixel decoder adds ``mask_features`` (stride 4) and
  ``multi_scale_features`` (coarse to fine).
* ``decode``: the transformer decoder predicts Q masks and class logits; what the class head needs per call
  (e.g. a text classifier of the current vocabulary) comes from ``class_inputs(split)``.
* training: ``build_targets`` (one mask + contiguous label per ground-truth segment) → ``compute_losses``
  (the set criterion) → plus ``auxiliary_losses`` a subclass adds (e.g. DreamMask's alignment loss).
* inference: ``inference_class_logits`` (a subclass may re-score classes, as FC-CLIP's ensemble does) →
  ``postprocess`` (panoptic / semantic / instance maps at each image's original size).

Subclasses override only what differs: FC-CLIP overrides ``class_inputs`` (text classifier + void row) and
``inference_class_logits`` (in-vocab × frozen-CLIP geometric ensemble). The public methods ``decode``,
``build_targets`` and ``compute_losses`` let wrappers train on logits they produce themselves (two fused
models, a distillation teacher).

The class vocabulary comes from the data: ``VocabularyHook`` (or a user) calls
``set_vocabulary(class_synonyms, is_thing, split)`` with the dataset's ``metainfo``; a checkpoint's
``meta['dataset_meta']`` (written by mmengine from the training dataset) tells which classes it was trained on.
"""
from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from mmengine.model import BaseModel
from mmengine.structures import InstanceData, PixelData
from torch import Tensor

from ovseg.models.utils.postprocess import (
    instance_inference,
    panoptic_inference,
    sem_seg_postprocess,
    semantic_inference,
)
from ovseg.registry import MODELS
from ovseg.structures import SegDataSample
from ovseg.vocabulary import ClassEntry, normalize_vocabulary

#: Inference switches and thresholds of Mask2Former (maskformer2_R50_bs16_50ep.yaml, MODEL.MASK_FORMER.TEST).
MASK_FORMER_TEST_CFG: dict[str, Any] = dict(
    panoptic_on=True,  # TEST.PANOPTIC_ON
    semantic_on=True,  # TEST.SEMANTIC_ON
    instance_on=True,  # TEST.INSTANCE_ON
    object_mask_threshold=0.8,  # TEST.OBJECT_MASK_THRESHOLD
    overlap_threshold=0.8,  # TEST.OVERLAP_THRESHOLD
    test_topk_per_image=100,  # TEST.DETECTIONS_PER_IMAGE (detectron2 default)
    sem_seg_postprocess_before_inference=False,  # forced True when panoptic or instance output is on
    output_seg_logits=False,  # also store C×H×W semantic scores as `seg_logits` (memory heavy)
)


class ModeDispatchMixin:
    """mmengine's ``forward(inputs, data_samples, mode)`` entry point, shared by every segmentor and by wrappers
    that hold segmentors (the in-/out-of-vocabulary fusion and merge models): a list of images is stacked, then
    ``mode`` selects ``loss`` / ``predict`` / ``_forward``."""

    def forward(self, inputs: Tensor, data_samples: Sequence[Any] | None = None, mode: str = 'tensor') -> Any:
        if isinstance(inputs, (list, tuple)):
            inputs = torch.stack(list(inputs))
        if mode == 'loss':
            return self.loss(inputs, data_samples)
        if mode == 'predict':
            return self.predict(inputs, data_samples)
        if mode == 'tensor':
            return self._forward(inputs, data_samples)
        raise RuntimeError(f'Invalid mode "{mode}". Only supports loss, predict and tensor mode')


@MODELS.register_module()
class MaskFormer(ModeDispatchMixin, BaseModel):
    """Mask-classification segmentor.

    Args:
        backbone: config of the backbone (returns a dict of feature maps; exposes ``output_channels`` /
            ``output_strides`` dicts so the pixel decoder's input shapes can be filled in).
        pixel_decoder: config of the pixel decoder (``forward(features) -> (mask_features, multi_scale)``).
        transformer_decoder: config of the decoder (``MaskedAttentionDecoder``); missing ``in_channels`` /
            ``mask_dim`` are taken from the pixel decoder.
        criterion: config of the set criterion; ``None`` builds an inference-only model.
        text_encoder: optional config of the text side (class names → classifier) that the segmentor owns;
            built with ``clip=<backbone>`` when the config leaves it out (CLIP-based models share one CLIP).
        data_preprocessor: ``SegDataPreprocessor`` config.
        test_cfg: inference switches and thresholds (see :data:`MASK_FORMER_TEST_CFG` and ``default_test_cfg``).
        train_cfg: kept for mmdet-style configs (unused).
        class_synonyms / is_thing: optional vocabulary set at construction for both splits (demos, tests).
        init_cfg: mmengine init config.
    """

    #: test_cfg keys and defaults of this segmentor; subclasses extend it.
    default_test_cfg: dict[str, Any] = MASK_FORMER_TEST_CFG
    #: backbone feature maps given to the pixel decoder.
    pixel_decoder_in_features: tuple[str, ...] = ('res2', 'res3', 'res4', 'res5')

    def __init__(self,
                 backbone: dict,
                 pixel_decoder: dict,
                 transformer_decoder: dict,
                 criterion: dict | None = None,
                 text_encoder: dict | None = None,
                 data_preprocessor: dict | None = None,
                 test_cfg: dict | None = None,
                 train_cfg: dict | None = None,
                 class_synonyms: Sequence[ClassEntry] | None = None,
                 is_thing: Sequence[bool] | None = None,
                 init_cfg: dict | list[dict] | None = None) -> None:
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.backbone = MODELS.build(backbone)
        self.text_encoder = self._build_text_encoder(text_encoder)
        self.pixel_decoder = MODELS.build(self._complete_pixel_decoder_cfg(dict(pixel_decoder)))
        self.transformer_decoder = MODELS.build(self._complete_decoder_cfg(dict(transformer_decoder)))
        self.criterion = MODELS.build(criterion) if criterion is not None else None
        self.test_cfg = self._resolve_test_cfg(test_cfg)
        self.train_cfg = dict(train_cfg or {})
        self._vocab: dict[str, dict[str, Any] | None] = {'train': None, 'test': None}
        if class_synonyms is not None:
            self.set_vocabulary(class_synonyms, is_thing, split='train')
            self.set_vocabulary(class_synonyms, is_thing, split='test')

    # ------------------------------------------------------------------ construction
    def _build_text_encoder(self, cfg: dict | None) -> Any:
        if cfg is None:
            return None
        cfg = dict(cfg)
        if 'clip' not in cfg and hasattr(self.backbone, 'clip_model'):
            cfg['clip'] = self.backbone
        return MODELS.build(cfg)

    def _complete_pixel_decoder_cfg(self, cfg: dict) -> dict:
        """Fill the backbone's feature shapes into the pixel-decoder config if it does not give them."""
        chans = getattr(self.backbone, 'output_channels', None)
        strides = getattr(self.backbone, 'output_strides', None)
        if 'input_shape' not in cfg and 'in_channels' not in cfg and chans is not None and strides is not None:
            cfg['input_shape'] = {k: dict(channels=chans[k], stride=strides[k]) for k in self.pixel_decoder_in_features}
        return cfg

    def _complete_decoder_cfg(self, cfg: dict) -> dict:
        for key, attr in (('in_channels', 'conv_dim'), ('mask_dim', 'mask_dim')):
            value = getattr(self.pixel_decoder, attr, None)
            if key not in cfg and value is not None:
                cfg[key] = value
        return cfg

    def _resolve_test_cfg(self, test_cfg: dict | None) -> dict[str, Any]:
        cfg = dict(self.default_test_cfg)
        unknown = set(test_cfg or {}) - set(cfg)
        if unknown:
            raise KeyError(f'{type(self).__name__} test_cfg: unknown keys {sorted(unknown)}; known: {sorted(cfg)}')
        cfg.update(test_cfg or {})
        if not (cfg['panoptic_on'] or cfg['semantic_on'] or cfg['instance_on']):
            raise ValueError(f'{type(self).__name__} test_cfg: at least one of panoptic_on / semantic_on / instance_on')
        if cfg['panoptic_on'] or cfg['instance_on']:
            cfg['sem_seg_postprocess_before_inference'] = True  # as Mask2Former's from_config
        return cfg

    # ------------------------------------------------------------------ vocabulary
    def set_vocabulary(self, class_synonyms: Sequence[ClassEntry], is_thing: Sequence[bool] | None = None,
                       split: str = 'test') -> None:
        """Set the class vocabulary of ``split`` ('train': training targets; 'test': inference).

        Args:
            class_synonyms: one entry per class, a list of synonyms (first = display name) or one comma-separated
                string (``'cat,kitty'``). Empty vocabularies, classes without names and duplicate classes raise.
            is_thing: one bool per class (panoptic/instance inference); defaults to all things, with a warning for
                a test vocabulary when panoptic or instance output is on.
            split: 'train' or 'test'.
        """
        if split not in ('train', 'test'):
            raise ValueError(f"split must be 'train' or 'test', got {split!r}")
        classes = normalize_vocabulary(class_synonyms)
        if is_thing is None:
            if split == 'test' and (self.test_cfg['panoptic_on'] or self.test_cfg['instance_on']):
                warnings.warn(f'{type(self).__name__}.set_vocabulary: no is_thing given for the test vocabulary; '
                              'treating every class as a thing', UserWarning, stacklevel=2)
            flags = [True] * len(classes)
        else:
            flags = [bool(x) for x in is_thing]
            if len(flags) != len(classes):
                raise ValueError(f'is_thing has {len(flags)} entries but the vocabulary has {len(classes)} classes')
        self._check_vocabulary(classes, split)
        self._vocab[split] = dict(classes=classes, is_thing=flags)
        self._vocabulary_changed(split)

    def _check_vocabulary(self, classes: list[tuple[str, ...]], split: str) -> None:
        """A fixed-label class head can only serve a vocabulary of its size."""
        head = getattr(self.transformer_decoder, 'class_head', None)
        fixed = getattr(head, 'num_classes', None)
        if fixed is not None and self.text_encoder is None and len(classes) != fixed:
            raise ValueError(f'{type(head).__name__} predicts {fixed} classes but the {split} vocabulary has '
                             f'{len(classes)}')

    def _vocabulary_changed(self, split: str) -> None:
        """Hook for subclasses caching something derived from the vocabularies."""

    def get_vocabulary(self, split: str = 'test') -> dict[str, Any] | None:
        """``{'classes': [tuple of synonyms], 'is_thing': [bool]}`` or ``None`` if not set."""
        return self._vocab.get(split)

    @property
    def num_classes(self) -> int:
        vocab = self._vocab['train' if self.training else 'test']
        return 0 if vocab is None else len(vocab['classes'])

    def require_vocabulary(self, split: str) -> dict[str, Any]:
        vocab = self._vocab[split]
        if vocab is None:
            what = 'training' if split == 'train' else 'inference'
            raise RuntimeError(
                f'{type(self).__name__} has no {split} vocabulary for {what}: call model.set_vocabulary('
                f"class_synonyms, is_thing, split='{split}') or add dict(type='VocabularyHook') to custom_hooks")
        return vocab

    # ------------------------------------------------------------------ features and decoding
    def extract_feat(self, inputs: Tensor) -> dict[str, Any]:
        """Backbone maps plus the pixel decoder's ``mask_features`` and ``multi_scale_features``."""
        feats = dict(self.backbone(inputs))
        out = self.pixel_decoder({k: feats[k] for k in self.pixel_decoder_in_features})
        if isinstance(out, dict):
            feats['mask_features'], feats['multi_scale_features'] = out['mask_features'], out['multi_scale_features']
        else:
            feats['mask_features'], feats['multi_scale_features'] = out[0], out[-1]
        return feats

    def class_inputs(self, split: str) -> dict[str, Any]:
        """Keyword arguments of the class head for the ``split`` vocabulary (text classifier, ...)."""
        if self.text_encoder is None:
            self.require_vocabulary(split)
            return {}
        classifier, num_templates = self.text_encoder(self.require_vocabulary(split)['classes'])
        return dict(text_classifier=classifier, num_templates=num_templates)

    def decode(self, feats: dict[str, Any], split: str = 'train',
               class_inputs: dict[str, Any] | None = None) -> dict[str, Any]:
        """Decoder outputs (``pred_logits`` B×Q×(C+1) on the ``split`` vocabulary, ``pred_masks``,
        ``aux_outputs``); ``class_inputs`` (from :meth:`class_inputs`) can be passed to avoid recomputing it."""
        if class_inputs is None:
            class_inputs = self.class_inputs(split)
        return self.transformer_decoder(feats['multi_scale_features'], feats['mask_features'],
                                        class_inputs=class_inputs)

    # ------------------------------------------------------------------ training
    def build_targets(self, data_samples: Sequence[Any]) -> list[dict[str, Tensor]]:
        """Per sample ``labels`` (contiguous index in the train vocabulary) and bool ``masks`` (batch-padded).

        A sample without segments is valid: every query is then matched to nothing and learns "void".
        """
        num_classes = len(self.require_vocabulary('train')['classes'])
        targets = []
        for ds in data_samples:
            gt = ds.gt_instances
            labels = gt.labels.long()
            if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= num_classes):
                raise ValueError(f'gt label {int(labels.max())} outside the train vocabulary of {num_classes} '
                                 'classes: did VocabularyHook set the train dataset vocabulary?')
            targets.append(dict(labels=labels, masks=torch.as_tensor(gt.masks).bool()))
        return targets

    def compute_losses(self, outputs: dict[str, Any], targets: Sequence[dict[str, Tensor]]) -> dict[str, Tensor]:
        """The criterion on given predictions (e.g. logits fused from two models) and targets."""
        if self.criterion is None:
            raise RuntimeError(f'{type(self).__name__} was built without a criterion; it cannot compute losses')
        return self.criterion(outputs, targets)

    def auxiliary_losses(self, feats: dict[str, Any], outputs: dict[str, Any],
                         data_samples: Sequence[Any]) -> dict[str, Tensor]:
        """Losses beyond the set criterion; none here (DreamMask adds its alignment loss)."""
        return {}

    def loss(self, inputs: Tensor, data_samples: Sequence[Any]) -> dict[str, Tensor]:
        feats = self.extract_feat(inputs)
        outputs = self.decode(feats, 'train')
        losses = self.compute_losses(outputs, self.build_targets(data_samples))
        losses.update(self.auxiliary_losses(feats, outputs, data_samples))
        return losses

    # ------------------------------------------------------------------ inference
    def inference_class_logits(self, feats: dict[str, Any], outputs: dict[str, Any],
                               class_inputs: dict[str, Any]) -> Tensor:
        """B×Q×(C+1) class scores for post-processing (logits or log-probabilities; softmax is applied there)."""
        return outputs['pred_logits']

    def predict(self, inputs: Tensor, data_samples: Sequence[Any] | None = None) -> list[Any]:
        """Panoptic / semantic / instance predictions at each sample's ``ori_shape`` (see docs/design.md)."""
        self.require_vocabulary('test')
        return self.predict_from_features(self.extract_feat(inputs), inputs, data_samples)

    def predict_from_features(self, feats: dict[str, Any], inputs: Tensor,
                              data_samples: Sequence[Any] | None = None) -> list[Any]:
        """:meth:`predict` on features already extracted from ``inputs`` (a subclass that adds outputs, e.g. SEEM's
        interactive evaluation, reuses them instead of running the backbone again)."""
        class_inputs = self.class_inputs('test')
        outputs = self.decode(feats, 'test', class_inputs)
        mask_cls = self.inference_class_logits(feats, outputs, class_inputs)
        batch_hw = tuple(inputs.shape[-2:])
        mask_pred = F.interpolate(outputs['pred_masks'], size=batch_hw, mode='bilinear', align_corners=False)
        del outputs
        return self.postprocess(mask_cls, mask_pred, batch_hw, data_samples)

    def postprocess(self, mask_cls: Tensor, mask_pred: Tensor, batch_hw: tuple[int, int],
                    data_samples: Sequence[Any] | None) -> list[Any]:
        """Per image: crop the padding, resize to ``ori_shape``, merge into panoptic / semantic / instance maps."""
        if data_samples is None:
            data_samples = [SegDataSample(metainfo=dict(img_shape=batch_hw, ori_shape=batch_hw))
                            for _ in range(mask_cls.shape[0])]
        cfg = self.test_cfg
        is_thing = self.require_vocabulary('test')['is_thing']
        for cls_i, mask_i, ds in zip(mask_cls, mask_pred, data_samples):
            img_shape = tuple(ds.metainfo.get('img_shape', batch_hw))[:2]
            ori_shape = tuple(ds.metainfo.get('ori_shape', img_shape))[:2]
            if cfg['sem_seg_postprocess_before_inference']:
                mask_i = sem_seg_postprocess(mask_i, img_shape, *ori_shape)
                cls_i = cls_i.to(mask_i)
            if cfg['semantic_on']:
                sem = semantic_inference(cls_i, mask_i)
                if not cfg['sem_seg_postprocess_before_inference']:
                    sem = sem_seg_postprocess(sem, img_shape, *ori_shape)
                ds.pred_sem_seg = PixelData(data=sem.argmax(0, keepdim=True).long())
                if cfg['output_seg_logits']:
                    ds.seg_logits = PixelData(data=sem)
            if cfg['panoptic_on']:
                pan, segments = panoptic_inference(cls_i, mask_i, is_thing, cfg['object_mask_threshold'],
                                                   cfg['overlap_threshold'])
                ds.pred_panoptic_seg = PixelData(data=pan[None])
                ds.set_metainfo(dict(pred_segments_info=segments))
            if cfg['instance_on']:
                inst = instance_inference(cls_i, mask_i, is_thing, topk=cfg['test_topk_per_image'],
                                          thing_only=cfg['panoptic_on'])
                ds.pred_instances = InstanceData(masks=inst['masks'], labels=inst['labels'], scores=inst['scores'])
        return list(data_samples)

    # ------------------------------------------------------------------ mmengine entry point
    def _forward(self, inputs: Tensor, data_samples: Sequence[Any] | None = None) -> dict[str, Any]:
        """Tensor mode: decoder outputs on the train vocabulary in training mode, the test one otherwise (the
        other when only one is set)."""
        split = 'train' if self.training else 'test'
        if self._vocab[split] is None:
            split = 'test' if split == 'train' else 'train'
        self.require_vocabulary(split)
        return self.decode(self.extract_feat(inputs), split)
