# Shared semantic-segmentation evaluation set-up (A-847, PC-59/459, VOC-20/21). Leaves set data_root,
# data_prefix, suffixes and vocabulary. FC-CLIP evaluates these semantic-only (PANOPTIC_ON/INSTANCE_ON
# False) with ResizeShortestEdge(800, max 1333) (MIN/MAX_SIZE_TEST); layouts from FC-CLIP's
# datasets/prepare_*.py scripts (docs/datasets.md).
dataset_type = 'SemSegDataset'
test_pipeline = [
    dict(type='LoadImage'),
    dict(type='ResizeShortestEdge', short_edge_length=800, max_size=1333),  # MIN/MAX_SIZE_TEST 800/1333
    dict(type='LoadSemSegAnnotations'),  # keeps the dataset's ignore value (65535 for A-847 / PC-459)
    dict(type='PackSegInputs'),
]
val_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type=dataset_type, img_suffix='.jpg', seg_map_suffix='.png', test_mode=True,
                 pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = [dict(type='SemSegMetric')]
test_evaluator = val_evaluator
