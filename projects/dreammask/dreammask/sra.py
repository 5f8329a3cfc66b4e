"""Synthetic-real alignment (DreamMask IAT): a per-class FIFO bank of real object features and the loss
``L_sra = mean(1 − cos(F_s, M_r))`` pulling synthetic objects towards their class's real prototype.

Where the features come from (our decision, see docs/dreammask.md): the seed pools the *frozen* dense CLIP
feature, which carries no gradient, so the loss could never move anything. We pool the trainable pixel
decoder's ``mask_features`` under each ground-truth mask and map it with FC-CLIP's in-vocabulary head
(``_mask_pooling_proj`` → ``class_embed``) into the CLIP embedding space in which the in-vocab classifier
scores classes. Real objects enter the bank detached; synthetic objects keep their graph, so ``loss_sra``
trains the pixel decoder and the in-vocab head, exactly the parts that classify novel objects.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ovseg.registry import MODELS
from ovseg.utils.dist import all_gather_rows


@MODELS.register_module()
class RealFeatureMemoryBank(nn.Module):
    """Per-class FIFO queues of L2-normalised real features: buffers ``bank`` [C,K,D], ``ptr`` and
    ``count`` [C]. All are persistent, so checkpoints carry the bank and ``--resume`` restores it."""

    def __init__(self, num_classes: int, feat_dim: int, size: int = 32) -> None:
        super().__init__()
        if num_classes <= 0 or size <= 0:
            raise ValueError(f'num_classes ({num_classes}) and size ({size}) must be positive')
        self.num_classes, self.size = num_classes, size
        self.register_buffer('bank', torch.zeros(num_classes, size, feat_dim))
        self.register_buffer('ptr', torch.zeros(num_classes, dtype=torch.long))
        self.register_buffer('count', torch.zeros(num_classes, dtype=torch.long))

    @torch.no_grad()
    def enqueue(self, feats: Tensor, labels: Tensor) -> None:
        """Push rows in order; a class receiving more than ``size`` rows keeps its last ``size``."""
        if feats.numel() == 0:
            return
        labels = labels.long()
        if int(labels.max()) >= self.num_classes or int(labels.min()) < 0:
            raise ValueError(f'label {int(labels.max())} outside the bank of {self.num_classes} classes: set '
                             'sra.num_classes to the training vocabulary size (incl. novel synthetic classes)')
        order = torch.sort(labels, stable=True).indices
        labels, feats = labels[order], feats[order]
        counts = torch.bincount(labels, minlength=self.num_classes)
        first = torch.cumsum(counts, 0) - counts
        rank = torch.arange(labels.numel(), device=labels.device) - first[labels]
        keep = rank >= counts[labels] - self.size  # only the newest `size` per class survive anyway
        labels, feats, rank = labels[keep], feats[keep], rank[keep]
        # sequential pushes put row r at (ptr + r) % size; the kept rows land on distinct slots
        pos = (self.ptr[labels] + rank) % self.size
        self.bank[labels, pos] = feats.to(self.bank.dtype)
        self.ptr.copy_((self.ptr + counts) % self.size)
        self.count.copy_((self.count + counts).clamp(max=self.size))

    def prototypes(self) -> tuple[Tensor, Tensor]:
        """Normalised mean of each class's filled entries [C,D], and which classes have any [C]."""
        valid = self.count > 0
        mean = self.bank.sum(1) / self.count.clamp(min=1)[:, None]  # unfilled slots are still zero
        return F.normalize(mean, dim=-1), valid

    def fill_ratio(self) -> Tensor:
        return self.count.float().mean() / self.size


def _mask_weights(masks: Tensor, h: int, w: int, dtype: torch.dtype) -> Tensor:
    """Area-downsample N×H×W binary masks to N×(h·w) soft weights (fraction of each cell covered).

    When H, W are multiples of h, w (padded batches and a stride-4 feature map always are) the masks are
    block-summed as integers, without materialising a float copy at full resolution (N×1024² floats would
    be ~4 MB per object on the real model)."""
    n, H, W = masks.shape
    if H % h == 0 and W % w == 0:
        fy, fx = H // h, W // w
        counts = masks.reshape(n, h, fy, w, fx).sum((2, 4), dtype=torch.int32)
        return counts.flatten(1).to(dtype) / float(fy * fx)
    return F.interpolate(masks[:, None].to(dtype), size=(h, w), mode='area')[:, 0].flatten(1)


def pool_objects(features: Tensor, masks: Tensor, image_index: Tensor) -> tuple[Tensor, Tensor]:
    """Mask-average ``features`` B×C×h×w under N GT ``masks`` (N×H×W, any size) of images ``image_index``.

    Masks are area-downsampled to the feature grid (soft weights). Vectorised over objects: one matrix
    product per image (objects grouped by image), never a Python loop over objects.
    Returns (pooled N×C, kept N bool: objects that still cover some feature cell)."""
    b, c, h, w = features.shape
    n = masks.shape[0]
    if n == 0:
        return features.new_zeros(0, c), torch.zeros(0, dtype=torch.bool, device=features.device)
    weights = _mask_weights(masks.bool(), h, w, features.dtype)
    area = weights.sum(-1)
    flat = features.flatten(2)  # B×C×P
    order = torch.argsort(image_index, stable=True)
    per_image = torch.bincount(image_index, minlength=b).tolist()
    chunks = [weights[idx] @ flat[i].t() for i, idx in enumerate(order.split(per_image)) if idx.numel()]
    pooled = features.new_empty(n, c)
    pooled[order] = torch.cat(chunks)
    return pooled / area.clamp(min=1e-6)[:, None], area > 0


@MODELS.register_module()
class SyntheticRealAlignment(nn.Module):
    """``loss_sra = λ · mean_{synthetic objects with a real prototype} (1 − cos(F_s, M_r))``.

    Args:
        num_classes: size of the training vocabulary (real classes + novel synthetic classes).
        feat_dim: dimension of the aligned features (the CLIP embedding size).
        memory_bank_size: FIFO length per class (DreamMask default 32, "β").
        lambda_sra: loss weight (DreamMask default 0.1, "λ"); 0 disables the module at no cost.
    """

    def __init__(self, num_classes: int, feat_dim: int, memory_bank_size: int = 32,
                 lambda_sra: float = 0.1) -> None:
        super().__init__()
        self.lambda_sra = float(lambda_sra)
        self.memory = RealFeatureMemoryBank(num_classes, feat_dim, memory_bank_size)

    @property
    def enabled(self) -> bool:
        return self.lambda_sra > 0

    def forward(self, real_feats: Tensor, real_labels: Tensor, syn_feats: Tensor,
                syn_labels: Tensor) -> dict[str, Tensor]:
        """Enqueue this step's real features (gathered over ranks), then align the synthetic ones."""
        real = F.normalize(real_feats.detach().float(), dim=-1)
        gathered = all_gather_rows(torch.cat([real, real_labels.float()[:, None]], 1))
        self.memory.enqueue(gathered[:, :-1], gathered[:, -1].long())
        proto, valid = self.memory.prototypes()
        syn = F.normalize(syn_feats.float(), dim=-1)
        has_proto = valid[syn_labels.long()] if syn_labels.numel() else syn_labels.bool()
        if has_proto.any():
            cos = (syn[has_proto] * proto[syn_labels[has_proto].long()]).sum(-1)
            loss = (1.0 - cos).mean() * self.lambda_sra
        else:  # nothing to align yet: zero that keeps the graph (DDP needs every rank to backprop)
            loss = syn_feats.sum() * 0.0
        return dict(loss_sra=loss, sra_bank_fill=self.memory.fill_ratio().detach(),
                    sra_aligned=has_proto.sum().float().detach())
