# Shared panoptic evaluation set-up (ADE20K-150, Cityscapes, Mapillary, COCO val). Leaves set data_root,
# ann_file, data_prefix, vocabulary and, where FC-CLIP's eval yaml differs, the test size / metrics.
# The GT stays at the original size; predictions are resized back to it (detectron2 convention).
dataset_type = 'CocoPanopticDataset'
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
    dataset=dict(type=dataset_type, test_mode=True, pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = [  # panoptic + semantic + instance (FC-CLIP eval yamls: all *_ON True unless overridden)
    dict(type='PanopticMetric'),
    dict(type='SemSegMetric'),
    dict(type='InstanceMaskAPMetric'),
]
test_evaluator = val_evaluator
