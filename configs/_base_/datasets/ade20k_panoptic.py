# ADE20K-150 panoptic val (FC-CLIP `openvocab_ade20k_panoptic_val`: PQ, mAP, mIoU).
# JSON/PNGs made by tools/dataset_converters/prepare_ade20k_panoptic.py (detectron2 layout).
dataset_type = 'CocoPanopticDataset'
data_root = 'data/ADEChallengeData2016/'

test_pipeline = [
    dict(type='LoadImage'),
    dict(type='ResizeShortestEdge', short_edge_length=800, max_size=1333),  # MIN/MAX_SIZE_TEST 800/1333
    dict(type='LoadPanopticAnnotations'),
    dict(type='PackSegInputs'),
]
val_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='ade20k_panoptic_val.json',
        data_prefix=dict(img='images/validation/', seg='ade20k_panoptic_val/'),
        vocabulary='ade20k_150',
        test_mode=True,
        pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = [  # panoptic + semantic + instance, as FC-CLIP's ADE20K eval config (all *_ON True)
    dict(type='PanopticMetric'),
    dict(type='SemSegMetric'),
    dict(type='InstanceMaskAPMetric'),
]
test_evaluator = val_evaluator
