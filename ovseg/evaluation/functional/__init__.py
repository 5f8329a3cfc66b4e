"""Metric cores without torch or mmengine (numpy + OpenCV): panoptic quality, semantic confusion statistics,
referring-segmentation IoU, and file-based panoptic / semantic evaluation over worker processes. The panoptic
PNG format itself lives in :mod:`ovseg.structures.panoptic_format`."""
from .panoptic_io import format_pq_table, panoptic_categories, pq_compute
from .panoptic_quality import (
                               OFFSET,
                               PanopticFormatError,
                               PQStats,
                               pair_intersections,
                               pq_average,
                               pq_image_stats,
                               pq_summary,
)
from .referring import ReferringStats, referring_image_stats, referring_iou, referring_summary
from .referring_io import RefSegFormatError, evaluate_refseg_files
from .sem_seg import SemSegStats, sem_seg_image_stats, sem_seg_summary
from .sem_seg_io import evaluate_label_dirs, read_label_png, reduce_zero_label
from .workers import usable_cores

__all__ = [
    'OFFSET', 'PanopticFormatError', 'PQStats', 'pair_intersections', 'pq_image_stats', 'pq_average', 'pq_summary',
    'pq_compute', 'format_pq_table', 'panoptic_categories', 'ReferringStats', 'referring_iou',
    'referring_image_stats', 'referring_summary', 'RefSegFormatError', 'evaluate_refseg_files',
    'SemSegStats', 'sem_seg_image_stats', 'sem_seg_summary',
    'evaluate_label_dirs', 'read_label_png', 'reduce_zero_label', 'usable_cores'
]
