"""Datasets (COCO-panoptic format, semantic, ToyScenes) and transforms; vocabulary files in ``vocabularies/``
(read through :mod:`ovseg.vocabulary`)."""
from . import samplers, transforms  # noqa: F401  (register samplers and transforms)
from .coco_panoptic import CocoPanopticDataset
from .referring import LoadReferringAnnotations, PackReferringInputs, RefCocoDataset
from .sem_seg import SemSegDataset
from .toy_referring import ToyReferringDataset, ensure_toy_referring
from .toy_scenes import ToyScenesDataset, ensure_toy_scenes, generate_toy_scenes

__all__ = ['CocoPanopticDataset', 'SemSegDataset', 'ToyScenesDataset', 'ensure_toy_scenes', 'generate_toy_scenes',
           'RefCocoDataset', 'LoadReferringAnnotations', 'PackReferringInputs', 'ToyReferringDataset',
           'ensure_toy_referring']
