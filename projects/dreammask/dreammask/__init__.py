"""DreamMask on ovseg: NSS synthetic scenes, real+synthetic mixing, synthetic-real alignment.

Imported by configs through ``custom_imports=dict(imports=['projects.dreammask.dreammask'])``. The NSS
generation pipeline (``.nss``) is not imported here: training does not need its heavy optional deps.
"""
from .dreammask_fcclip import DreamMaskFCCLIP  # noqa: F401
from .mixing import RealSyntheticDataset, RealSyntheticMixSampler  # noqa: F401
from .nss_scene_dataset import LoadNSSAnnotations, NSSSceneDataset  # noqa: F401
from .sra import RealFeatureMemoryBank, SyntheticRealAlignment, pool_objects  # noqa: F401
from .toy_synthetic import ToyNSSSceneDataset, generate_toy_synthetic  # noqa: F401
