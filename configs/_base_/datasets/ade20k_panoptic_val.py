# ADE20K-150 panoptic val exactly as FC-CLIP registers `openvocab_ade20k_panoptic_val`
# (fcclip/data/datasets/register_ade20k_panoptic.py): images, the panoptic PNGs + JSON made by
# tools/dataset_converters/prepare_ade20k_panoptic.py, and the SceneParsing semantic labels
# `annotations_detectron2/validation` (prepare_ade20k_sem_seg.py) on which SemSegEvaluator scores mIoU.
# Variables only (ade20k_*), so the ADE eval base and the COCO training recipe, which validates on ADE20K,
# can both use them next to another dataset base without clashing keys.
ade20k_data_root = 'data/ADEChallengeData2016/'
ade20k_test_pipeline = [
    dict(type='LoadImage'),
    dict(type='ResizeShortestEdge', short_edge_length=800, max_size=1333),  # MIN/MAX_SIZE_TEST 800/1333
    dict(type='LoadPanopticAnnotations', with_seg_map=False),  # GT of PQ and of the instance AP
    dict(type='LoadSemSegAnnotations', path_key='sem_seg_map_path'),  # GT of mIoU: SceneParsing labels
    dict(type='PackSegInputs'),
]
ade20k_val_dataset = dict(
    type='CocoPanopticDataset',
    data_root=ade20k_data_root,
    ann_file='ade20k_panoptic_val.json',
    data_prefix=dict(img='images/validation/', seg='ade20k_panoptic_val/',
                     sem_seg='annotations_detectron2/validation/'),
    vocabulary='ade20k_150',
    test_mode=True,
    pipeline=ade20k_test_pipeline)
# train_net.py build_evaluator, evaluator_type `ade20k_panoptic_seg`: SemSegEvaluator + COCOPanopticEvaluator +
# InstanceSegEvaluator. The latter reads ade20k_instance_val.json, which prepare_ade20k_ins_seg.py builds from the
# same annotations_instance PNGs as the thing segments of the panoptic GT, so mask AP against the panoptic
# thing segments (InstanceMaskAPMetric) is the official ADE20K protocol (and only ADE20K's).
ade20k_val_evaluator = [
    dict(type='PanopticMetric'),
    dict(type='SemSegMetric'),
    dict(type='InstanceMaskAPMetric'),  # panoptic-derived mask AP: FC-CLIP's ADE20K protocol
]
