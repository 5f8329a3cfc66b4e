"""Novel Sample Synthesis (DreamMask NSS).

CNA -> context-aware layouts -> layout-to-image -> SAM+CLIP selection.

Run with ``python tools/nss/run.py configs/nss/<name>.py``; see ``docs/nss.md``.
"""
from . import layout, llm, masks, render  # noqa: F401  (register backends)
from .cna import count_novel, parse_category_list, run_cna
from .pipeline import STAGES, NSSPipeline
from .registry import LAYOUT_GENERATORS, LLMS, MASK_SCORERS, RENDERERS
from .vocab import COCO_THING_NAMES, load_base_vocabulary

__all__ = [
    'NSSPipeline', 'STAGES', 'run_cna', 'parse_category_list', 'count_novel', 'LLMS', 'LAYOUT_GENERATORS',
    'RENDERERS', 'MASK_SCORERS', 'load_base_vocabulary', 'COCO_THING_NAMES'
]
