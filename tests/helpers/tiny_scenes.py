"""A few ToyScenes images rendered in memory and packed as the segmentors expect (no files).

Used by engine tests that need the real tiny FC-CLIP to train for a couple of steps through a runner.
"""
from __future__ import annotations

import numpy as np
import torch
from mmengine.structures import InstanceData

from ovseg.datasets.toy_scenes import CLASSES, render_scene
from ovseg.registry import DATASETS
from ovseg.structures import SegDataSample

TRAIN_CLASSES = [i for i, c in enumerate(CLASSES) if c.name not in ('star', 'water')]  # ToyScenes' base split


@DATASETS.register_module(force=True)
class TinyScenesInMemory:
    """``num`` seeded scenes of ``size``; labels are contiguous over the 9 base classes."""

    def __init__(self, num: int = 4, size: tuple[int, int] = (64, 64), seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        contiguous = {c: i for i, c in enumerate(TRAIN_CLASSES)}
        things = [i for i in TRAIN_CLASSES if CLASSES[i].isthing]
        tops = [i for i in TRAIN_CLASSES if CLASSES[i].kind == 'top']
        bottoms = [i for i in TRAIN_CLASSES if CLASSES[i].kind == 'bottom']
        self.samples = []
        for _ in range(num):
            img, layers = render_scene(rng, tuple(size), things, tops, bottoms, 1, 3)
            layers = [(c, m) for c, m in layers if m.any()]
            sample = SegDataSample(metainfo=dict(img_shape=tuple(size), ori_shape=tuple(size), pad_shape=tuple(size),
                                                 flip=False))
            sample.gt_instances = InstanceData(
                labels=torch.tensor([contiguous[c] for c, _ in layers], dtype=torch.long),
                masks=torch.from_numpy(np.stack([m for _, m in layers])))
            self.samples.append(dict(inputs=torch.from_numpy(img).permute(2, 0, 1).contiguous(),
                                     data_samples=sample))
        self.metainfo = dict(classes=tuple(CLASSES[i].name for i in TRAIN_CLASSES),
                             class_synonyms=[list(CLASSES[i].synonyms) for i in TRAIN_CLASSES],
                             is_thing=[CLASSES[i].isthing for i in TRAIN_CLASSES])

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, idx: int) -> dict:
        return self.samples[idx]
