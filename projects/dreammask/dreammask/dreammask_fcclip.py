"""FC-CLIP trained DreamMask-style: segmentation losses plus synthetic-real alignment (``L_seg + λ·L_sra``)."""
from __future__ import annotations

from typing import Any, Dict, Optional, Sequence

import torch
from torch import Tensor

from ovseg.models.segmentors.fcclip import FCCLIP
from ovseg.registry import MODELS

from .sra import SyntheticRealAlignment, pool_objects


@MODELS.register_module()
class DreamMaskFCCLIP(FCCLIP):
    """``FCCLIP`` whose ``loss`` adds ``loss_sra`` for samples whose metainfo has ``is_synthetic=True``.

    Args:
        sra: ``dict(num_classes=..., memory_bank_size=32, lambda_sra=0.1)``; ``num_classes`` is the size of
            the training vocabulary including novel synthetic classes (the bank's index space is the
            training vocabulary's contiguous index, shared by real and synthetic samples).
        Other arguments: as ``FCCLIP``.
    """

    def __init__(self, *args, sra: Optional[dict] = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        sra = dict(sra or {})
        if 'num_classes' not in sra:
            raise ValueError('DreamMaskFCCLIP needs sra.num_classes (training vocabulary size incl. novel classes)')
        sra.setdefault('feat_dim', int(self.backbone.embed_dim))
        self.sra = SyntheticRealAlignment(**sra)

    def object_embeddings(self, feats: Dict[str, Any], data_samples: Sequence[Any]):
        """Per GT object: pooled ``mask_features`` mapped by the in-vocab head into CLIP space.

        Returns (embeddings N×D, labels N, is_synthetic N) over the batch's non-empty objects."""
        masks, labels, image_index, synthetic = [], [], [], []
        for i, ds in enumerate(data_samples):
            gt = ds.gt_instances
            masks.append(gt.masks.bool())
            labels.append(gt.labels.long())
            image_index.append(torch.full_like(gt.labels.long(), i))
            synthetic.append(torch.full_like(gt.labels, bool(ds.metainfo.get('is_synthetic', False)),
                                             dtype=torch.bool))
        masks, labels = torch.cat(masks), torch.cat(labels)
        image_index, synthetic = torch.cat(image_index), torch.cat(synthetic)
        pooled, kept = pool_objects(feats['mask_features'], masks, image_index)
        head = self.transformer_decoder.class_head
        emb = head.class_embed(head._mask_pooling_proj(pooled[kept]))
        return emb, labels[kept], synthetic[kept]

    def sra_loss(self, feats: Dict[str, Any], data_samples: Sequence[Any]) -> Dict[str, Tensor]:
        emb, labels, synthetic = self.object_embeddings(feats, data_samples)
        real = ~synthetic
        with torch.no_grad():
            real_emb = emb[real].detach()
        return self.sra(real_emb, labels[real], emb[synthetic], labels[synthetic])

    def loss(self, inputs: Tensor, data_samples: Sequence[Any]) -> Dict[str, Tensor]:
        feats = self.extract_feat(inputs)
        losses = self.seg_loss(feats, data_samples)
        if self.sra.enabled:
            losses.update(self.sra_loss(feats, data_samples))
        return losses
