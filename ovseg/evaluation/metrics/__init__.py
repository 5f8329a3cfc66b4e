"""mmengine metrics: panoptic quality, semantic mIoU and mask AP (panoptic-derived, COCO JSON, Cityscapes)."""
from .cityscapes_instance_ap_metric import CityscapesInstanceAPMetric
from .coco_instance_ap_metric import CocoInstanceAPMetric
from .instance_ap_metric import InstanceMaskAPMetric
from .panoptic_metric import PanopticMetric
from .referring_metric import ReferringSegMetric
from .sem_seg_metric import SemSegMetric

__all__ = ['PanopticMetric', 'SemSegMetric', 'InstanceMaskAPMetric', 'CocoInstanceAPMetric',
           'CityscapesInstanceAPMetric', 'ReferringSegMetric']
