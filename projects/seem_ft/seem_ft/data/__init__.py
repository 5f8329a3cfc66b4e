"""SEEM fine-tuning data (issue 11): custom panoptic PNG + JSON with grounding sentences per segment.

* :mod:`.grounding`: the grounding JSON (RefCOCO-style, keyed to panoptic segment ids), reader and writer.
* :mod:`.datasets`: :class:`PanopticGroundingDataset` (training) and :class:`GroundingReferringDataset`
  (referring evaluation with the core ``ReferringSegMetric``).
* :mod:`.transforms`: :class:`SampleGroundings` and :class:`PackSEEMInputs` (``gt_groundings``).
* :mod:`.toy_seem`: ToyScenes + generated grounding sentences for CPU toys.

Users' own data: ``tools/dataset_converters/colour_masks_to_seem.py`` builds the panoptic, semantic and grounding
files from colour-coded masks and a class table.
"""
from .datasets import GroundingReferringDataset, PanopticGroundingDataset
from .grounding import (
    GroundingFormatError,
    match_groundings,
    normalise_sentence,
    read_grounding_json,
    write_grounding_json,
)
from .toy_seem import ToySEEMDataset, ToySEEMReferringDataset, ensure_toy_seem, generate_toy_seem, toy_seem_paths
from .transforms import SEEM_GROUNDING_MAX_LEN, PackSEEMInputs, SampleGroundings, swap_left_right

__all__ = ['GroundingFormatError', 'read_grounding_json', 'match_groundings', 'write_grounding_json',
           'normalise_sentence', 'PanopticGroundingDataset', 'GroundingReferringDataset', 'SampleGroundings',
           'PackSEEMInputs', 'SEEM_GROUNDING_MAX_LEN', 'swap_left_right', 'ensure_toy_seem', 'generate_toy_seem',
           'toy_seem_paths', 'ToySEEMDataset', 'ToySEEMReferringDataset']
