"""Datasets (COCO-panoptic format, semantic, ToyScenes), transforms and class vocabularies."""
from . import samplers, transforms  # noqa: F401  (register samplers and transforms)
from .coco_panoptic import CocoPanopticDataset
from .sem_seg import SemSegDataset
from .toy_scenes import ToyScenesDataset, ensure_toy_scenes, generate_toy_scenes
from .vocabularies import available_vocabularies, load_category_meta, load_vocabulary

__all__ = ['CocoPanopticDataset', 'SemSegDataset', 'ToyScenesDataset', 'ensure_toy_scenes',
           'generate_toy_scenes',
           'load_vocabulary', 'load_category_meta', 'available_vocabularies']
