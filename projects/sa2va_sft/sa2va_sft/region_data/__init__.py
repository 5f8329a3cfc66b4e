"""Region-pair data for Sa2VA mask-caption SFT (issue 13): caption a region in view A, re-segment it in view B.

Sources (each a ``SeededSampleMixin`` + mmengine ``BaseDataset`` registered in ``ovseg.registry.DATASETS``; decode
with ``dict(type='LoadRegionPair')``, registered in ``TRANSFORMS``, as the first pipeline step; the result keys are
listed in :mod:`.region_pair`):

* :class:`SAVMaskletDataset`: SA-V masklets (official ``{video_id}_manual.json`` + ``{video_id}.mp4``);
* :class:`SAVFramePairNpzDataset`: our npz frame pairs (``tools/dataset_converters/sav_to_frame_pairs.py``);
* :class:`SA1BDataset`: SA-1B per-image JSON + jpg;
* :class:`OpenImagesSegDataset`: Open Images V7 segmentation CSV + mask PNGs;
* :class:`ToyFramePairDataset`: generated ToyScenes frame pairs (CPU tests and demos).

Imported by configs through ``custom_imports=dict(imports=['projects.sa2va_sft.sa2va_sft.region_data'])``.
"""
from .open_images import (  # noqa: F401
    OPEN_IMAGES_MASK_THRESHOLD,
    OpenImagesSegDataset,
    open_images_mask_paths,
    read_class_names,
    read_open_images_mask,
)
from .region_pair import (  # noqa: F401
    REGION_LOADERS,
    REGION_PAIR_KEYS,
    REGION_SOURCES,
    LoadRegionPair,
    RegionPairDataset,
    check_region_pair,
    read_rgb,
    register_region_loader,
)
from .sa1b import SA1BDataset, read_sa1b_json  # noqa: F401
from .sav import (  # noqa: F401
    NPZ_OPTIONAL_KEYS,
    NPZ_REQUIRED_KEYS,
    SAV_FRAME_STRIDE,
    SAVFramePairNpzDataset,
    SAVMaskletDataset,
    choose_frame_pair,
    frame_pair_candidates,
    load_sav_pair,
    read_frame_pair_npz,
    read_sav_json,
    read_video_frames,
    write_frame_pair_npz,
)
from .toy_frame_pairs import (  # noqa: F401
    TOY_PAIRS_DEFAULTS,
    ToyFramePairDataset,
    draw_toy_pair_scene,
    ensure_toy_frame_pairs,
    generate_toy_frame_pairs,
    sample_toy_pair_scene,
)
