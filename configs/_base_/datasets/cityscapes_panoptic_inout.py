# Cityscapes panoptic for in-/out-of-vocabulary fine-tuning (issue 10): train on a label configuration of the
# train split (thing classes deleted from the JSON; tools/dataset_converters/cityscapes_inout.py), evaluate on
# the FULL val JSON with all 19 classes (never on a deleted-class JSON: panopticapi does not treat an id absent
# from the GT JSON as VOID). Leaves set `train_dataloader.dataset.ann_file`.
_base_ = ['./cityscapes_panoptic.py']
# Mask2Former's Cityscapes panoptic recipe (maskformer2_R50_bs16_90k.yaml / Base-Cityscapes-PanopticSegmentation:
# INPUT.MIN_SIZE_TRAIN 512..2048 (x0.5..2.0 of 1024), CROP 512x1024, flip); the scale range as ovseg's LSJ op.
crop_size = (512, 1024)
train_pipeline = [
    dict(type='LoadImage'),
    dict(type='LoadPanopticAnnotations'),  # unlisted (deleted) segment ids → VOID, per the dataset option below
    dict(type='RandomFlip', prob=0.5),
    dict(type='RandomResizeScale', min_scale=0.5, max_scale=2.0, target_size=(1024, 2048)),
    dict(type='FixedSizeCrop', crop_size=crop_size),
    dict(type='PackSegInputs', with_instances=True),
]
train_dataloader = dict(
    batch_size=4,  # 2 GPUs x 4 = the study's batch of 8
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='ResumableInfiniteSampler', shuffle=True),
    dataset=dict(
        type='CocoPanopticDataset',
        data_root='data/cityscapes/',
        ann_file='gtFine/inout/cityscapes_panoptic_train_000.json',
        data_prefix=dict(img='leftImg8bit/train/', seg='gtFine/cityscapes_panoptic_train/'),
        img_subdir_sep='_',
        vocabulary='cityscapes',
        unlisted_segments='no_target',  # a deleted segment's id stays in the PNG: no target, as FC-CLIP's mapper
        filter_cfg=dict(filter_empty_gt=True),
        pipeline=train_pipeline))
