"""FC-CLIP (Yu et al., NeurIPS 2023): open-vocabulary panoptic segmentation with a single frozen CLIP.

Data flow (reference ``fcclip/fcclip.py``, notes §1):

* ``extract_feat``: frozen :class:`~ovseg.models.backbones.CLIPBackbone` → ``stem, res2..res5,
  clip_vis_dense``; the MSDeformAttn pixel decoder adds ``mask_features`` (stride 4) and
  ``multi_scale_features`` (1/32, 1/16, 1/8).
* the masked-attention transformer decoder predicts ``Q`` masks and scores them with the *in-vocabulary*
  head against the CLIP text classifier of the current vocabulary (+ the learnable void embedding as its
  last row);
* training (``seg_loss``): Hungarian matching + CE / BCE / dice on the train vocabulary;
* inference (``predict``): the frozen CLIP classifies each mask too (*out-of-vocabulary*), the two are fused
  by the geometric ensemble (α for classes seen in training, β for unseen ones) and the fused
  ``log``-probabilities go through MaskFormer post-processing (:mod:`ovseg.models.utils.postprocess`).

The vocabulary is not part of the config: :class:`~ovseg.engine.hooks.VocabularyHook` (or a user) calls
``set_vocabulary(class_synonyms, is_thing, split)`` with the dataset's ``metainfo``.
"""
from __future__ import annotations

import logging
import warnings
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from mmengine.logging import print_log
from mmengine.model import BaseModel
from mmengine.structures import InstanceData, PixelData
from torch import Tensor, nn

from ovseg.registry import MODELS
from ovseg.models.utils.postprocess import (instance_inference, panoptic_inference, sem_seg_postprocess,
                                            semantic_inference)

Vocabulary = Sequence[Union[str, Sequence[str]]]

DEFAULT_TEST_CFG = dict(
    panoptic_on=True,  # MODEL.MASK_FORMER.TEST.PANOPTIC_ON
    semantic_on=True,  # ...SEMANTIC_ON
    instance_on=True,  # ...INSTANCE_ON
    object_mask_threshold=0.0,  # eval yaml OBJECT_MASK_THRESHOLD (base yaml 0.8)
    overlap_threshold=0.8,  # OVERLAP_THRESHOLD
    geometric_ensemble_alpha=0.4,  # MODEL.FC_CLIP.GEOMETRIC_ENSEMBLE_ALPHA (seen classes)
    geometric_ensemble_beta=0.8,  # MODEL.FC_CLIP.GEOMETRIC_ENSEMBLE_BETA (unseen classes)
    ensemble_on_valid_mask=False,  # MODEL.FC_CLIP.ENSEMBLE_ON_VALID_MASK (True for RN CLIPs)
    test_topk_per_image=100,  # TEST.DETECTIONS_PER_IMAGE (detectron2 default)
    sem_seg_postprocess_before_inference=False,  # forced True when panoptic or instance output is on
    output_seg_logits=False,  # also store C×H×W semantic scores as `seg_logits` (memory heavy)
)


@MODELS.register_module()
class FCCLIP(BaseModel):
    """FC-CLIP segmentor.

    Args:
        backbone: config of the frozen CLIP (``CLIPBackbone``).
        pixel_decoder: config of ``MSDeformAttnPixelDecoder``; the backbone's ``res2..res5`` channels and
            strides are filled in when the config leaves them out.
        transformer_decoder: config of ``FCCLIPTransformerDecoder`` (its ``class_head`` is the in-vocab
            classifier); missing input channels / CLIP embedding dim are filled in.
        criterion: config of the set criterion (with its Hungarian matcher).
        data_preprocessor: ``SegDataPreprocessor`` config (CLIP mean/std, pad to 32).
        test_cfg: inference switches and thresholds, see :data:`DEFAULT_TEST_CFG`.
        train_cfg: unused, for symmetry with mmdet configs.
        class_synonyms / is_thing: optional vocabulary set at construction for both splits (demos, tests).
        init_cfg: mmengine init config.
    """

    def __init__(self,
                 backbone: dict,
                 pixel_decoder: dict,
                 transformer_decoder: dict,
                 criterion: Optional[dict] = None,
                 data_preprocessor: Optional[dict] = None,
                 test_cfg: Optional[dict] = None,
                 train_cfg: Optional[dict] = None,
                 class_synonyms: Optional[Vocabulary] = None,
                 is_thing: Optional[Sequence[bool]] = None,
                 init_cfg: Optional[Union[dict, List[dict]]] = None) -> None:
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.backbone = MODELS.build(backbone)
        self.pixel_decoder = MODELS.build(self._complete_pixel_decoder_cfg(dict(pixel_decoder)))
        self.transformer_decoder = MODELS.build(
            self._complete_decoder_cfg(dict(transformer_decoder), self.pixel_decoder))
        self.criterion = MODELS.build(criterion) if criterion is not None else None
        embed_dim = int(self.backbone.embed_dim)
        # Learnable "no object" text embedding, appended (normalized) as the classifier's last row.
        self.void_embedding = nn.Embedding(1, embed_dim)

        cfg = dict(DEFAULT_TEST_CFG)
        unknown = set(test_cfg or {}) - set(cfg)
        if unknown:
            raise KeyError(f'FCCLIP test_cfg: unknown keys {sorted(unknown)}; known: {sorted(cfg)}')
        cfg.update(test_cfg or {})
        if not (cfg['panoptic_on'] or cfg['semantic_on'] or cfg['instance_on']):
            raise ValueError('FCCLIP test_cfg: at least one of panoptic_on / semantic_on / instance_on')
        if cfg['panoptic_on'] or cfg['instance_on']:
            cfg['sem_seg_postprocess_before_inference'] = True  # as FC-CLIP's from_config
        self.test_cfg = cfg
        self.train_cfg = dict(train_cfg or {})

        self._vocab: Dict[str, Optional[Dict[str, Any]]] = {'train': None, 'test': None}
        self._seen_mask: Optional[Tensor] = None
        self._warned_no_train_vocab = False
        if class_synonyms is not None:
            self.set_vocabulary(class_synonyms, is_thing, split='train')
            self.set_vocabulary(class_synonyms, is_thing, split='test')

    # ------------------------------------------------------------------ construction helpers
    def _complete_pixel_decoder_cfg(self, cfg: dict) -> dict:
        """Fill the backbone feature shapes into the pixel-decoder config if it does not give them."""
        chans = self.backbone.output_channels
        strides = self.backbone.output_strides
        names = ['res2', 'res3', 'res4', 'res5']
        if 'input_shape' not in cfg and 'in_channels' not in cfg:
            cfg['input_shape'] = {k: dict(channels=chans[k], stride=strides[k]) for k in names}
        return cfg

    def _complete_decoder_cfg(self, cfg: dict, pixel_decoder: nn.Module) -> dict:
        embed_dim = int(self.backbone.embed_dim)
        if 'in_channels' not in cfg:
            conv_dim = getattr(pixel_decoder, 'conv_dim', None)
            if conv_dim is not None:
                cfg['in_channels'] = conv_dim
        if 'mask_dim' not in cfg:
            mask_dim = getattr(pixel_decoder, 'mask_dim', None)
            if mask_dim is not None:
                cfg['mask_dim'] = mask_dim
        head = cfg.get('class_head')
        if isinstance(head, dict):
            head = dict(head)
            if head.get('embed_dim') is None:
                head['embed_dim'] = embed_dim
            elif int(head['embed_dim']) != embed_dim:
                raise ValueError(
                    f'class_head.embed_dim={head["embed_dim"]} but the CLIP backbone embeds into '
                    f'{embed_dim} dims')
            cfg['class_head'] = head
        return cfg

    # ------------------------------------------------------------------ vocabulary
    def set_vocabulary(self,
                       class_synonyms: Vocabulary,
                       is_thing: Optional[Sequence[bool]] = None,
                       split: str = 'test') -> None:
        """Set the class vocabulary of ``split`` ('train' → training classifier; 'test' → inference).

        Args:
            class_synonyms: one entry per class, a list of synonyms (first = display name) or one
                comma-separated string (``'cat,kitty'``). Empty vocabularies, classes without names and
                duplicate classes raise ``ValueError``.
            is_thing: one bool per class (needed for panoptic/instance inference; defaults to all things
                for 'test' with a warning, to all stuff-agnostic ``None`` for 'train').
            split: 'train' or 'test'.
        """
        if split not in ('train', 'test'):
            raise ValueError(f"split must be 'train' or 'test', got {split!r}")
        from ovseg.models.heads import normalize_vocabulary
        classes = normalize_vocabulary(class_synonyms)
        if is_thing is None:
            if split == 'test' and (self.test_cfg['panoptic_on'] or self.test_cfg['instance_on']):
                warnings.warn(
                    'FCCLIP.set_vocabulary: no is_thing given for the test vocabulary; treating '
                    'every class as a thing',
                    UserWarning,
                    stacklevel=2)
            flags = [True] * len(classes)
        else:
            flags = [bool(x) for x in is_thing]
            if len(flags) != len(classes):
                raise ValueError(f'is_thing has {len(flags)} entries but the vocabulary has {len(classes)} '
                                 'classes')
        self._vocab[split] = dict(classes=classes, is_thing=flags)
        self._seen_mask = None  # recomputed lazily from the current train/test pair

    def get_vocabulary(self, split: str = 'test') -> Optional[Dict[str, Any]]:
        """``{'classes': [tuple of synonyms], 'is_thing': [bool]}`` or ``None`` if not set."""
        return self._vocab.get(split)

    @property
    def num_classes(self) -> int:
        vocab = self._vocab['train' if self.training else 'test']
        return 0 if vocab is None else len(vocab['classes'])

    def _require_vocab(self, split: str) -> Dict[str, Any]:
        vocab = self._vocab[split]
        if vocab is None:
            what = 'training' if split == 'train' else 'inference'
            raise RuntimeError(
                f'FCCLIP has no {split} vocabulary for {what}: call model.set_vocabulary(class_synonyms, '
                f"is_thing, split='{split}') or add dict(type='VocabularyHook') to custom_hooks")
        return vocab

    def get_text_classifier(self, split: str) -> Tuple[Tensor, List[int]]:
        """(S+1)×D normalized classifier (per synonym, void row last) and synonyms per class."""
        vocab = self._require_vocab(split)
        from ovseg.models.heads import append_void_classifier
        classifier, num_templates = self.backbone.get_text_classifier(vocab['classes'])
        classifier = append_void_classifier(classifier.to(self.void_embedding.weight.device),
                                            self.void_embedding.weight)
        return classifier, num_templates

    def seen_mask(self) -> Tensor:
        """Bool[C_test]: test classes whose synonyms overlap the train vocabulary (α vs β)."""
        test = self._require_vocab('test')
        if self._seen_mask is None:
            train = self._vocab['train']
            if train is None:
                if not self._warned_no_train_vocab:
                    msg = ('FCCLIP: no train vocabulary set, so no test class counts as seen (β is used for '
                           "all); set one with set_vocabulary(..., split='train') or VocabularyHook("
                           'train_vocabulary=...)')
                    warnings.warn(msg, UserWarning, stacklevel=2)
                    print_log(msg, logger='current', level=logging.WARNING)
                    self._warned_no_train_vocab = True
                self._seen_mask = torch.zeros(len(test['classes']), dtype=torch.bool)
            else:
                from ovseg.models.heads import category_overlap_mask
                self._seen_mask = category_overlap_mask(test['classes'], train['classes'])
        return self._seen_mask

    # ------------------------------------------------------------------ features
    def extract_feat(self, inputs: Tensor) -> Dict[str, Any]:
        """CLIP maps (``stem, res2..res5, clip_vis_dense``), ``mask_features``, ``multi_scale_features``."""
        feats = dict(self.backbone(inputs))
        mask_features, multi_scale_features = self._run_pixel_decoder(feats)
        feats['mask_features'] = mask_features
        feats['multi_scale_features'] = multi_scale_features
        return feats

    def _run_pixel_decoder(self, feats: Dict[str, Tensor]):
        out = self.pixel_decoder({k: feats[k] for k in ('res2', 'res3', 'res4', 'res5')})
        if isinstance(out, dict):
            return out['mask_features'], out['multi_scale_features']
        return out[0], out[-1]

    def _decode(self, feats: Dict[str, Any], split: str) -> Dict[str, Any]:
        text_classifier, num_templates = self.get_text_classifier(split)
        return self.transformer_decoder(feats['multi_scale_features'], feats['mask_features'],
                                        text_classifier, num_templates)

    # ------------------------------------------------------------------ training
    def seg_loss(self, feats: Dict[str, Any], data_samples: Sequence[Any]) -> Dict[str, Tensor]:
        """FC-CLIP segmentation losses (CE + mask BCE + dice, with deep supervision) on the train vocabulary.

        Targets are each sample's ``gt_instances`` (``labels``, ``masks`` padded to the batch by the data
        preprocessor). A sample without segments is valid: every query is then matched to nothing and
        learns "void" through the class loss, and mask losses see no targets.
        """
        if self.criterion is None:
            raise RuntimeError('FCCLIP was built without a criterion; it cannot compute losses')
        outputs = self._decode(feats, 'train')
        num_classes = len(self._vocab['train']['classes'])
        targets = []
        for ds in data_samples:
            gt = ds.gt_instances
            labels = gt.labels.long()
            masks = gt.masks
            if hasattr(masks, 'to_tensor'):  # mmdet BitmapMasks, just in case
                masks = masks.to_tensor(dtype=torch.bool, device=labels.device)
            masks = torch.as_tensor(masks).bool()
            if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= num_classes):
                raise ValueError(
                    f'gt label {int(labels.max())} outside the train vocabulary of {num_classes} '
                    'classes: did VocabularyHook set the train dataset vocabulary?')
            targets.append(dict(labels=labels, masks=masks))
        return self._criterion_losses(outputs, targets, data_samples, num_classes)

    def _criterion_losses(self, outputs, targets, data_samples, num_classes) -> Dict[str, Tensor]:
        return self.criterion(outputs, targets)

    def loss(self, inputs: Tensor, data_samples: Sequence[Any]) -> Dict[str, Tensor]:
        feats = self.extract_feat(inputs)
        return self.seg_loss(feats, data_samples)

    # ------------------------------------------------------------------ inference
    def ensemble_logits(self, feats: Dict[str, Any], outputs: Dict[str, Any], text_classifier: Tensor,
                        num_templates: Sequence[int]) -> Tensor:
        """Geometric ensemble of in-vocab and frozen-CLIP logits → B×Q×(C+1) log-probabilities."""
        from ovseg.models.heads import geometric_ensemble, out_vocab_logits
        in_logits = outputs['pred_logits']
        alpha = float(self.test_cfg['geometric_ensemble_alpha'])
        beta = float(self.test_cfg['geometric_ensemble_beta'])
        if alpha == 0.0 and beta == 0.0:
            # Pure in-vocabulary prediction: skip the frozen-CLIP pass (the result is identical).
            p = in_logits.softmax(-1)
            return torch.log(p + 1e-8)
        out_logits, valid = out_vocab_logits(self.backbone, feats['clip_vis_dense'], outputs['pred_masks'],
                                             text_classifier, num_templates)
        return geometric_ensemble(in_logits, out_logits.to(in_logits.dtype), self.seen_mask(), alpha, beta,
                                  valid if self.test_cfg['ensemble_on_valid_mask'] else None)

    def predict(self, inputs: Tensor, data_samples: Optional[Sequence[Any]] = None) -> List[Any]:
        """Panoptic / semantic / instance predictions at each sample's ``ori_shape`` (see design.md)."""
        vocab = self._require_vocab('test')
        feats = self.extract_feat(inputs)
        text_classifier, num_templates = self.get_text_classifier('test')
        outputs = self.transformer_decoder(feats['multi_scale_features'], feats['mask_features'],
                                           text_classifier, num_templates)
        mask_cls = self.ensemble_logits(feats, outputs, text_classifier, num_templates)
        mask_pred = outputs['pred_masks']
        batch_hw = tuple(inputs.shape[-2:])
        mask_pred = F.interpolate(mask_pred, size=batch_hw, mode='bilinear', align_corners=False)
        del outputs

        if data_samples is None:
            from ovseg.structures import SegDataSample
            data_samples = [
                SegDataSample(metainfo=dict(img_shape=batch_hw, ori_shape=batch_hw))
                for _ in range(inputs.shape[0])
            ]
        cfg = self.test_cfg
        is_thing = vocab['is_thing']
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
                inst = instance_inference(cls_i,
                                          mask_i,
                                          is_thing,
                                          topk=cfg['test_topk_per_image'],
                                          thing_only=cfg['panoptic_on'])
                ds.pred_instances = InstanceData(masks=inst['masks'],
                                                 labels=inst['labels'],
                                                 scores=inst['scores'])
        return list(data_samples)

    def _forward(self, inputs: Tensor, data_samples: Optional[Sequence[Any]] = None) -> Dict[str, Any]:
        """Tensor mode: decoder outputs (``pred_logits`` B×Q×(C+1), ``pred_masks``, ``aux_outputs``)
        with the train vocabulary in training mode and the test vocabulary otherwise."""
        split = 'train' if self.training else 'test'
        if self._vocab[split] is None:
            split = 'test' if split == 'train' else 'train'
        self._require_vocab(split)
        return self._decode(self.extract_feat(inputs), split)

    def forward(self, inputs: Tensor, data_samples: Optional[Sequence[Any]] = None, mode: str = 'tensor'):
        if isinstance(inputs, (list, tuple)):
            inputs = torch.stack(list(inputs))
        if mode == 'loss':
            return self.loss(inputs, data_samples)
        if mode == 'predict':
            return self.predict(inputs, data_samples)
        if mode == 'tensor':
            return self._forward(inputs, data_samples)
        raise RuntimeError(f'Invalid mode "{mode}". Only supports loss, predict and tensor mode')
