# PASCAL Context 459 val, FC-CLIP `openvocab_pascal_ctx459_sem_seg_val` (16-bit TIFF labels 0..458).
# Semantic-only evaluation (FC-CLIP eval configs set PANOPTIC_ON/INSTANCE_ON False): mIoU via SemSegMetric.
# Layout as produced by FC-CLIP's datasets/prepare_*.py scripts (docs/datasets.md).
dataset_type = 'SemSegDataset'
data_root = 'data/pascal_ctx_d2/'

test_pipeline = [
    dict(type='LoadImage'),
    dict(type='ResizeShortestEdge', short_edge_length=800, max_size=1333),  # MIN/MAX_SIZE_TEST 800/1333
    dict(type='LoadSemSegAnnotations'),  # 16-bit TIFF ignore 65535 is mapped to 255
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
        data_prefix=dict(img='images/validation/', seg='annotations_ctx459/validation/'),
        img_suffix='.jpg',
        seg_map_suffix='.tif',
        vocabulary='pascal_context_459',
        test_mode=True,
        pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = [dict(type='SemSegMetric')]
test_evaluator = val_evaluator
