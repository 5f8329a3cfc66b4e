# COCO panoptic 2017 (133 classes), FC-CLIP training set; layout in docs/datasets.md.
# Sources: FC-CLIP Base-COCO-PanopticSegmentation.yaml / maskformer2_R50_bs16_50ep.yaml and the
# `coco_panoptic_lsj` dataset mapper (coco_panoptic_new_baseline_dataset_mapper.py).
dataset_type = 'CocoPanopticDataset'
data_root = 'data/coco/'
image_size = (1024, 1024)  # INPUT.IMAGE_SIZE 1024 (LSJ)

train_pipeline = [
    dict(type='LoadImage'),
    dict(type='LoadPanopticAnnotations'),
    dict(type='RandomFlip', prob=0.5),  # detectron2 RandomFlip default: horizontal, p=0.5
    # INPUT.MIN_SCALE 0.1, INPUT.MAX_SCALE 2.0
    dict(type='RandomResizeScale', min_scale=0.1, max_scale=2.0, target_size=image_size),
    dict(type='FixedSizeCrop', crop_size=image_size),  # pad 128 image / 0 VOID / 255 sem (d2 FixedSizeCrop)
    dict(type='PackSegInputs', with_instances=True),
]
test_pipeline = [
    dict(type='LoadImage'),
    dict(type='ResizeShortestEdge', short_edge_length=800, max_size=1333),  # MIN/MAX_SIZE_TEST 800/1333
    dict(type='LoadPanopticAnnotations'),  # GT stays at the original size for evaluation
    dict(type='PackSegInputs'),
]

train_dataloader = dict(
    batch_size=2,  # IMS_PER_BATCH 16 over 8 GPUs ("configs are made for 8-GPU training")
    num_workers=4,  # DATALOADER.NUM_WORKERS 4 (Base-COCO)
    persistent_workers=True,
    # Iteration-based schedule: infinite stream; resumable = same indices as mmengine's InfiniteSampler.
    sampler=dict(type='ResumableInfiniteSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='annotations/panoptic_train2017.json',
        data_prefix=dict(img='train2017/', seg='annotations/panoptic_train2017/'),
        vocabulary='coco_panoptic',
        filter_cfg=dict(filter_empty_gt=True),  # d2 DATALOADER.FILTER_EMPTY_ANNOTATIONS True
        pipeline=train_pipeline))
coco_val_dataset = dict(  # also a variable, for recipes that validate on COCO next to another val set
    type=dataset_type,
    data_root=data_root,
    ann_file='annotations/panoptic_val2017.json',
    data_prefix=dict(img='val2017/', seg='annotations/panoptic_val2017/'),
    vocabulary='coco_panoptic',
    test_mode=True,
    pipeline=test_pipeline)
val_dataloader = dict(
    batch_size=1,  # detectron2 inference batch size 1
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=coco_val_dataset)
test_dataloader = val_dataloader

# FC-CLIP evaluates COCO with COCOPanopticEvaluator + SemSegEvaluator + COCOEvaluator (train_net.py); the
# latter scores mask AP against the instance annotations (json_file of register_coco_panoptic_annos_semseg.py),
# not against thing segments of the panoptic PNGs. mIoU: semantic labels of every listed panoptic segment (crowd
# included, VOID ignored), as prepare_coco_semantic_annos_from_panoptic_annos.py makes them.
coco_val_evaluator = [
    dict(type='PanopticMetric'),
    dict(type='SemSegMetric'),
    dict(type='CocoInstanceAPMetric', ann_file=data_root + 'annotations/instances_val2017.json'),
]
val_evaluator = coco_val_evaluator
test_evaluator = val_evaluator
