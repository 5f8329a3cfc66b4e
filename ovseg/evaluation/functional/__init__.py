"""Metric cores usable without mmengine: panoptic quality, semantic confusion statistics, file I/O."""
from .panoptic_io import (format_pq_table, id2rgb, panoptic_categories, pq_compute, read_panoptic_png, rgb2id,
                          write_panoptic_png)
from .panoptic_quality import (OFFSET, VOID, PanopticFormatError, PQStats, pair_intersections, pq_average,
                               pq_image_stats, pq_summary)
from .sem_seg import SemSegStats, sem_seg_image_stats, sem_seg_summary

__all__ = [
    'OFFSET', 'VOID', 'PanopticFormatError', 'PQStats', 'pair_intersections', 'pq_image_stats', 'pq_average',
    'pq_summary', 'rgb2id', 'id2rgb', 'read_panoptic_png', 'write_panoptic_png', 'pq_compute',
    'format_pq_table', 'panoptic_categories', 'SemSegStats', 'sem_seg_image_stats', 'sem_seg_summary'
]
