from .clip_score import TINY_CLIP_NAME, ClipCropScorer, build_clip, register_tiny_clip
from .sam import SamBoxSegmenter, build_sam, build_tiny_sam
from .scorers import ProceduralOracleScorer, SamClipScorer
from .selection import SelectionConfig, select_objects
from .writer import scene_record, write_processed_scene

__all__ = [
    'build_sam', 'build_tiny_sam', 'SamBoxSegmenter', 'build_clip', 'register_tiny_clip', 'TINY_CLIP_NAME',
    'ClipCropScorer', 'SamClipScorer', 'ProceduralOracleScorer', 'SelectionConfig', 'select_objects',
    'scene_record', 'write_processed_scene'
]
