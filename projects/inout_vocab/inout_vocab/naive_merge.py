"""The naive baseline: in-vocabulary classes from the fine-tuned model, out-of-vocabulary ones from the zero-shot
model, merged at inference (the study's "FT on in-classes-GT + intersection with ZS at inference" rows).

The merge, per image (:func:`merge_panoptic`):

1. every segment the fine-tuned model predicts with an **in-vocabulary** class is kept as is (its out-of-vocabulary
   segments are dropped: it was trained with no target for those classes);
2. every **out-of-vocabulary** segment of the zero-shot model is pasted onto the pixels still unassigned after
   step 1 (VOID or a dropped segment there); a segment left with no pixel disappears; its in-vocabulary segments
   are ignored;
3. pixels left are VOID. Segment ids are renumbered 1..n in that order.

Semantic maps follow the same rule per pixel: the fine-tuned label where it is in-vocabulary, else the zero-shot
label where that is out-of-vocabulary, else the fine-tuned label. Instances: the fine-tuned model's in-vocabulary
ones and the zero-shot model's out-of-vocabulary ones.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from mmengine.model import BaseModel
from mmengine.structures import InstanceData, PixelData
from torch import Tensor

from ovseg.models.segmentors.mask_former import ModeDispatchMixin
from ovseg.registry import MODELS
from ovseg.vocabulary import normalize_vocabulary

from .two_model_fusion import build_member


def merge_panoptic(ft_pan: Tensor, ft_segments: Sequence[dict], zs_pan: Tensor, zs_segments: Sequence[dict],
                   out_vocab: Tensor) -> tuple[Tensor, list[dict]]:
    """Merge two H×W panoptic id maps (see the module docstring); ``out_vocab`` is Bool[C] over class labels."""
    merged = torch.zeros_like(ft_pan)
    segments: list[dict] = []

    def paste(pan: Tensor, seg: dict, only_free: bool) -> None:
        region = pan == int(seg['id'])
        if only_free:
            region &= merged == 0
        if bool(region.any()):
            new = dict(seg, id=len(segments) + 1)
            merged[region] = new['id']
            segments.append(new)

    for seg in ft_segments:
        if not bool(out_vocab[int(seg['category_id'])]):
            paste(ft_pan, seg, only_free=False)
    for seg in zs_segments:
        if bool(out_vocab[int(seg['category_id'])]):
            paste(zs_pan, seg, only_free=True)
    return merged, segments


def merge_semantic(ft_sem: Tensor, zs_sem: Tensor, out_vocab: Tensor) -> Tensor:
    """Per pixel: fine-tuned label if in-vocab, else zero-shot label if out-of-vocab, else fine-tuned label."""
    out_vocab = out_vocab.to(ft_sem.device)
    take_zs = out_vocab[ft_sem] & out_vocab[zs_sem]
    return torch.where(take_zs, zs_sem, ft_sem)


def merge_instances(ft: InstanceData, zs: InstanceData, out_vocab: Tensor) -> InstanceData:
    keep_ft, keep_zs = ~out_vocab[ft.labels], out_vocab[zs.labels]
    return InstanceData(masks=torch.cat([ft.masks[keep_ft], zs.masks[keep_zs]]),
                        labels=torch.cat([ft.labels[keep_ft], zs.labels[keep_zs]]),
                        scores=torch.cat([ft.scores[keep_ft], zs.scores[keep_zs]]))


@MODELS.register_module()
class NaiveMergeSegmentor(ModeDispatchMixin, BaseModel):
    """Inference-only pair: a fine-tuned model for in-vocabulary classes, a zero-shot one for the others.

    Args:
        finetuned / zero_shot: segmentor configs (or overrides of ``member``), each with its ``checkpoint``.
        member: the architecture both share (``member={{_base_.model}}``), updated by ``finetuned`` / ``zero_shot``.
        out_vocab_classes: names of the out-of-vocabulary (deleted) classes, matched by synonym against the test
            vocabulary; every other test class is in-vocabulary.
        zero_shot_train_vocabulary: the vocabulary the zero-shot model was trained on (its seen classes for
            FC-CLIP's ensemble); default: its checkpoint's ``meta['dataset_meta']``; the fine-tuned model's train
            vocabulary is the run's (``VocabularyHook``).
        data_preprocessor: the run's ``SegDataPreprocessor``.
    """

    def __init__(self, finetuned: dict, zero_shot: dict, out_vocab_classes: Sequence[str], member: dict | None = None,
                 zero_shot_train_vocabulary: Any = None, data_preprocessor: dict | None = None,
                 init_cfg: dict | None = None) -> None:
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.finetuned = build_member(finetuned, 'finetuned', member)
        zs_cfg = dict(zero_shot)
        self.zero_shot = build_member(zs_cfg, 'zero_shot', member)
        if not out_vocab_classes:
            raise ValueError('NaiveMergeSegmentor: out_vocab_classes is empty; nothing to take from the zero-shot '
                             'model')
        self.out_vocab_classes = [str(c) for c in out_vocab_classes]
        if zero_shot_train_vocabulary is None and zs_cfg.get('checkpoint'):
            from .submodel_checkpoint import checkpoint_train_vocabulary, read_segmentor_state_dict
            zero_shot_train_vocabulary = checkpoint_train_vocabulary(read_segmentor_state_dict(
                zs_cfg['checkpoint'])[1])
        if zero_shot_train_vocabulary is not None:
            if isinstance(zero_shot_train_vocabulary, tuple) and len(zero_shot_train_vocabulary) == 2:
                syns, flags = zero_shot_train_vocabulary
            else:
                from ovseg.vocabulary import resolve_vocabulary
                syns, flags = resolve_vocabulary(zero_shot_train_vocabulary)
            self.zero_shot.set_vocabulary(syns, flags, split='train')
        self._out_vocab: Tensor | None = None

    def set_vocabulary(self, class_synonyms: Sequence[Any], is_thing: Sequence[bool] | None = None,
                       split: str = 'test') -> None:
        self.finetuned.set_vocabulary(class_synonyms, is_thing, split)
        if split == 'test':
            self.zero_shot.set_vocabulary(class_synonyms, is_thing, split)
            self._out_vocab = self._out_vocab_mask(class_synonyms)
        elif self.zero_shot.get_vocabulary('train') is None:
            self.zero_shot.set_vocabulary(class_synonyms, is_thing, split)

    def get_vocabulary(self, split: str = 'test') -> dict[str, Any] | None:
        return self.finetuned.get_vocabulary(split)

    def _out_vocab_mask(self, class_synonyms: Sequence[Any]) -> Tensor:
        classes = normalize_vocabulary(class_synonyms)
        wanted = {name.strip().lower() for name in self.out_vocab_classes}
        mask = torch.tensor([any(s.lower() in wanted for s in syns) for syns in classes], dtype=torch.bool)
        found = {s.lower() for syns, m in zip(classes, mask) if m for s in syns}
        missing = sorted(wanted - found)
        if missing:
            raise ValueError(f'NaiveMergeSegmentor: out_vocab_classes {missing} are not in the test vocabulary '
                             f'({[c[0] for c in classes]})')
        return mask

    def loss(self, inputs: Tensor, data_samples: Any) -> dict[str, Tensor]:
        raise RuntimeError('NaiveMergeSegmentor is inference-only: train the fine-tuned model on its own config '
                           '(e.g. the lower-bound config on label configuration 008), then test this config')

    def predict(self, inputs: Tensor, data_samples: Sequence[Any] | None = None) -> list[Any]:
        if self._out_vocab is None:
            raise RuntimeError("NaiveMergeSegmentor: no test vocabulary; call set_vocabulary(..., split='test') or "
                               "add dict(type='VocabularyHook') to custom_hooks")
        ft = self.finetuned.predict(inputs, data_samples)
        zs = self.zero_shot.predict(inputs, [ds.clone() for ds in ft] if data_samples is not None else None)
        out_vocab = self._out_vocab
        for a, b in zip(ft, zs):
            if 'pred_panoptic_seg' in a:
                pan, segs = merge_panoptic(a.pred_panoptic_seg.data[0], a.metainfo['pred_segments_info'],
                                           b.pred_panoptic_seg.data[0], b.metainfo['pred_segments_info'],
                                           out_vocab.to(a.pred_panoptic_seg.data.device))
                a.pred_panoptic_seg = PixelData(data=pan[None])
                a.set_metainfo(dict(pred_segments_info=segs))
            if 'pred_sem_seg' in a:
                a.pred_sem_seg = PixelData(data=merge_semantic(a.pred_sem_seg.data, b.pred_sem_seg.data, out_vocab))
            if 'pred_instances' in a:
                a.pred_instances = merge_instances(a.pred_instances, b.pred_instances,
                                                   out_vocab.to(a.pred_instances.labels.device))
        return ft

    def _forward(self, inputs: Tensor, data_samples: Sequence[Any] | None = None) -> Any:
        raise RuntimeError('NaiveMergeSegmentor has no tensor mode: its output is the merged prediction (predict)')
