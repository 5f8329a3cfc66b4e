# ToyScenes: procedural panoptic data generated on first use under data/toy_scenes (seconds on a CPU).
# 128x128 images, 6 things + 5 stuff; 'star' and 'water' are novel: absent from train images and the train
# vocabulary, evaluated on val (all 11 classes) — FC-CLIP's train-on-base / test-on-all protocol in small.
dataset_type = 'ToyScenesDataset'
data_root = 'data/toy_scenes'
toy_generate = dict(num_train=200, num_val=50, size=(128, 128), seed=0, novel_classes=['star', 'water'])
crop_size = (128, 128)  # images are 128², so LSJ crops back to the image size

train_pipeline = [
    dict(type='LoadImage'),
    dict(type='LoadPanopticAnnotations'),
    dict(type='RandomFlip', prob=0.5),
    # milder LSJ than COCO's 0.1..2.0: objects in 128² images are already small
    dict(type='RandomResizeScale', min_scale=0.5, max_scale=1.5, target_size=crop_size),
    dict(type='FixedSizeCrop', crop_size=crop_size),
    dict(type='PackSegInputs', with_instances=True),
]
test_pipeline = [
    dict(type='LoadImage'),
    dict(type='ResizeShortestEdge', short_edge_length=128, max_size=128),  # identity at 128²
    dict(type='LoadPanopticAnnotations'),
    dict(type='PackSegInputs'),
]
train_dataloader = dict(
    batch_size=4,
    num_workers=2,  # 2-core CI machines; set 0 for debugging
    persistent_workers=True,
    sampler=dict(type='ResumableInfiniteSampler', shuffle=True),
    dataset=dict(type=dataset_type, data_root=data_root, split='train', generate=toy_generate,
                 pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=4,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type=dataset_type, data_root=data_root, split='val', generate=toy_generate, test_mode=True,
                 pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = [dict(type='PanopticMetric'), dict(type='SemSegMetric')]
test_evaluator = val_evaluator
