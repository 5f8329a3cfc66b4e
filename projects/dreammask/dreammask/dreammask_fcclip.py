"""FC-CLIP trained DreamMask-style: segmentation losses plus synthetic-real alignment (``L_seg + λ·L_sra``)."""
from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from typing import Any

import torch
from mmengine.logging import print_log
from torch import Tensor

from ovseg.models.segmentors import FCCLIP
from ovseg.registry import MODELS

from .sra import SyntheticRealAlignment, pool_objects


@MODELS.register_module()
class DreamMaskFCCLIP(FCCLIP):
    """``FCCLIP`` whose loss adds ``loss_sra``; synthetic samples carry ``metainfo[synthetic_key] = True``.

    Args:
        sra: ``dict(num_classes=..., memory_bank_size=32, lambda_sra=0.1)``; ``num_classes`` is the size of
            the training vocabulary including novel synthetic classes (the bank's index space is the
            training vocabulary's contiguous index, shared by real and synthetic samples).
        synthetic_key: the data-sample metainfo key that marks synthetic scenes (``NSSSceneDataset`` sets
            ``is_synthetic``; the synthetic pipeline's ``PackSegInputs`` lists it in ``extra_meta_keys``; real samples
            without the key count as real).
        Other arguments: as ``FCCLIP``.
    """

    def __init__(self, *args: Any, sra: dict | None = None, synthetic_key: str = 'is_synthetic',
                 **kwargs: Any) -> None:
        self.synthetic_key = synthetic_key
        super().__init__(*args, **kwargs)
        sra = dict(sra or {})
        if 'num_classes' not in sra:
            raise ValueError('DreamMaskFCCLIP needs sra.num_classes (training vocabulary size incl. novel classes)')
        sra.setdefault('feat_dim', int(self.backbone.embed_dim))
        self.sra = SyntheticRealAlignment(**sra)
        self._sra_steps, self._bank_warned = 0, False

    def object_embeddings(self, feats: dict[str, Any], data_samples: Sequence[Any]
                          ) -> tuple[tuple[Tensor, Tensor], tuple[Tensor, Tensor]]:
        """Per GT object: ``mask_features`` pooled under its mask, mapped by the in-vocab head into CLIP space.

        Returns ((real embeddings, real labels), (synthetic embeddings, synthetic labels)). Real objects are
        pooled and projected without autograd (they only feed the bank); synthetic ones keep their graph."""
        groups = {False: ([], [], []), True: ([], [], [])}
        for i, ds in enumerate(data_samples):
            gt = ds.gt_instances
            m, lab, idx = groups[bool(ds.metainfo.get(self.synthetic_key, False))]
            m.append(gt.masks.bool())
            lab.append(gt.labels.long())
            idx.append(torch.full_like(gt.labels.long(), i))
        mf = feats['mask_features']
        out = []
        for syn in (False, True):
            masks, labels, image_index = groups[syn]
            if not masks:
                out.append((mf.new_zeros(0, self.sra.memory.bank.shape[-1]), torch.zeros(0, dtype=torch.long,
                                                                                         device=mf.device)))
                continue
            masks, labels, image_index = torch.cat(masks), torch.cat(labels), torch.cat(image_index)
            with torch.set_grad_enabled(syn and torch.is_grad_enabled()):
                pooled, kept = pool_objects(mf if syn else mf.detach(), masks, image_index)
                out.append((self.transformer_decoder.class_head.region_embedding(pooled[kept]), labels[kept]))
        return out[0], out[1]

    def sra_loss(self, feats: dict[str, Any], data_samples: Sequence[Any]) -> dict[str, Tensor]:
        (real_emb, real_labels), (syn_emb, syn_labels) = self.object_embeddings(feats, data_samples)
        out = self.sra(real_emb, real_labels, syn_emb, syn_labels)
        self._check_bank_fills(syn_labels.numel() > 0)
        return out

    def _check_bank_fills(self, saw_synthetic: bool, after_steps: int = 50) -> None:
        """Warn once when synthetic objects keep arriving but no real feature ever entered the bank
        (seed 000's synthetic-only mode): ``loss_sra`` is then 0 and SRA does nothing."""
        if self._bank_warned:
            return
        self._sra_steps += 1
        if self._sra_steps >= after_steps and saw_synthetic and int(self.sra.memory.count.sum()) == 0:
            self._bank_warned = True
            msg = (f'DreamMaskFCCLIP: {self._sra_steps} training steps and the real-feature bank is still empty '
                   '(no real images in the batches, e.g. synthetic-only training): loss_sra stays 0, SRA has no '
                   'effect. Mix real data in with RealSyntheticMixSampler to use it.')
            warnings.warn(msg)
            print_log(msg, logger='current', level=logging.WARNING)

    def set_vocabulary(self, class_synonyms: Sequence[Any], is_thing: Sequence[bool] | None = None,
                       split: str = 'test') -> None:
        """As ``FCCLIP``; for the training vocabulary also checks that the SRA bank has a row per class."""
        if split == 'train' and len(class_synonyms) > self.sra.memory.num_classes:
            raise ValueError(
                f'training vocabulary has {len(class_synonyms)} classes (real + novel synthetic) but the SRA bank '
                f'was sized for sra.num_classes={self.sra.memory.num_classes}: raise model.sra.num_classes')
        super().set_vocabulary(class_synonyms, is_thing, split)

    def auxiliary_losses(self, feats: dict[str, Any], outputs: dict[str, Any],
                         data_samples: Sequence[Any]) -> dict[str, Tensor]:
        """``loss_sra`` (+ bank statistics) next to the segmentation losses; nothing when λ = 0."""
        return self.sra_loss(feats, data_samples) if self.sra.enabled else {}
