# PASCAL VOC 2012 val without background (20 classes; background = 255),
# FC-CLIP `openvocab_pascal20_sem_seg_val`.
# Semantic-only evaluation (FC-CLIP eval configs set PANOPTIC_ON/INSTANCE_ON False): mIoU via SemSegMetric.
# Layout as produced by FC-CLIP's datasets/prepare_*.py scripts (docs/datasets.md).
dataset_type = 'SemSegDataset'
data_root = 'data/pascal_voc_d2/'

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
        data_prefix=dict(img='images/validation/', seg='annotations_pascal20/validation/'),
        img_suffix='.jpg',
        seg_map_suffix='.png',
        vocabulary='pascal_voc_20',
        test_mode=True,
        pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = [dict(type='SemSegMetric')]
test_evaluator = val_evaluator
