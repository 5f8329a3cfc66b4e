"""Package."""
from .point_sample import get_uncertain_point_coords_with_randomness, point_sample  # noqa: F401
from .postprocess import instance_inference, panoptic_inference, sem_seg_postprocess, semantic_inference  # noqa: F401,E501
from .seem_names import seem_backbone_pixel_lang_keys  # noqa: F401
