"""mmengine metrics: panoptic quality, semantic mIoU and COCO mask AP, all computed in memory."""
from .instance_ap_metric import InstanceMaskAPMetric
from .panoptic_metric import PanopticMetric
from .sem_seg_metric import SemSegMetric

__all__ = ['PanopticMetric', 'SemSegMetric', 'InstanceMaskAPMetric']
