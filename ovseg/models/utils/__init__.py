"""Package."""
from .postprocess import instance_inference, panoptic_inference, sem_seg_postprocess, semantic_inference  # noqa: F401,E501
