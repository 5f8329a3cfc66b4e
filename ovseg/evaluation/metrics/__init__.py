"""mmengine metrics: panoptic quality, semantic mIoU, COCO mask AP and referring cIoU/gIoU, in memory."""
from .instance_ap_metric import InstanceMaskAPMetric
from .panoptic_metric import PanopticMetric
from .referring_metric import ReferringSegMetric
from .sem_seg_metric import SemSegMetric

__all__ = ['PanopticMetric', 'SemSegMetric', 'InstanceMaskAPMetric', 'ReferringSegMetric']
