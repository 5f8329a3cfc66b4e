"""In-vocabulary / out-of-vocabulary fine-tuning of FC-CLIP (issue 10).

Imported by configs through ``custom_imports=dict(imports=['projects.inout_vocab.inout_vocab'])``.
"""
from .distillation import DistillFCCLIP, class_logit_distillation  # noqa: F401
from .fusions import FUSIONS, build_fusion, fuse_decoder_outputs  # noqa: F401
from .label_configs import (  # noqa: F401
    CITYSCAPES_CATEGORY_IDS,
    CITYSCAPES_DELETE_ORDER,
    check_categories,
    delete_segments,
    deleted_class_names,
    deleted_ids,
    parse_config_list,
)
from .naive_merge import NaiveMergeSegmentor, merge_panoptic, merge_semantic  # noqa: F401
from .pseudo_labels import relabel_unlisted_segments, segment_ious  # noqa: F401
from .submodel_checkpoint import load_segmentor_checkpoint  # noqa: F401
from .toy_label_configs import TOY_DELETE_ORDER, ToyLabelConfigDataset, write_toy_label_config  # noqa: F401
from .two_model_fusion import TwoModelFusionSegmentor  # noqa: F401
