# SEEM v1 fine-tuning on a user's own data (the converter's layout) with the official recipe values.
# Sources: SEEM v1.0 configs/seem/focal{t,l}_unicl_lang_v1.yaml (SOLVER, INPUT), assets/readmes/TRAIN.md (batch 16,
# 50 epochs, lr 1e-4) (SEEM v1.0 assets/readmes/TRAIN.md). Leaves: seem-{strategy}_{focalt|focall}_8xb2-50e_
# custom.py = model (_base_/seem_{focalt,focall}_model.py) x strategy (_base_/strategy_*.py) x this recipe.
#
# Data: tools/dataset_converters/colour_masks_to_seem.py --out {data_root} --split train|val writes
#   panoptic_{split}.json, panoptic_{split}/ (PNG), panoptic_semseg_{split}/ (PNG), grounding_{split}.json;
# the images stay where --images pointed: put them in {data_root}images/{split}/ (or change data_prefix.img).
_base_ = ['../../_base_/default_runtime.py']

# ---- the researcher's options (SEEM overrides -> ovseg keys); change them here or with --cfg-options ------------
# COCO.INPUT.IMAGE_SIZE (256..1024; 1024 in the recipe). The LSJ pipeline below is built from it: a leaf that
# changes image_size must redefine train_pipeline / train_dataloader as well (docs/seem_ft.md shows how).
image_size = 1024
# TRAIN.BATCH_SIZE_TOTAL 16 (TRAIN.md; the yaml's 4 is a small-machine default) and BATCH_SIZE_PER_GPU 2 = 8 GPUs.
# Both are honoured: per_gpu is the dataloader batch, total is checked against per_gpu x GPUs x accumulation
# (TrainBatchSizeCheckHook: a clear error naming the numbers otherwise; use optim_wrapper.accumulative_counts).
train_batch_size_total = 16
train_batch_size_per_gpu = 2
base_lr = 1e-4  # SOLVER.BASE_LR
max_epochs = 50  # SOLVER.MAX_NUM_EPOCHS
evaluate_at_start = False  # EVAL_AT_START
panoptic_on = True  # MODEL.DECODER.TEST.PANOPTIC_ON: PQ
instance_on = False  # MODEL.DECODER.TEST.INSTANCE_ON (the seed's False): mask AP against the panoptic GT's things
num_classes = None  # MODEL.ENCODER.NUM_CLASSES: optional, checked against the data (the classes come from it)
# The leaves pass these three to `model` ({{_base_.panoptic_on}} ...: the model base owns `model`); val_evaluator and
# the best checkpoint below follow the switches. Like image_size, they are read when this file is: edit them here
# (a child config or --cfg-options that flips a switch must set model.test_cfg and val_evaluator too; an evaluator
# without its predictions stops with the switch's name).
# MODEL.DECODER.HIDDEN_DIM / CONVS_DIM / MASK_DIM 512: in _base_/seem_{focalt,focall}_model.py (checkpoint's).
data_root = 'data/custom_seem/'

# ---- data: SEEM's LSJ (ResizeScale 0.1-2.0 + FixedSizeCrop IMAGE_SIZE), 1-4 grounding sentences per image --------
train_pipeline = [
    dict(type='LoadImage'),
    dict(type='LoadPanopticAnnotations'),
    dict(type='RandomFlip', prob=0.5),  # left / right in the sentences swap with the image (PackSEEMInputs)
    dict(type='RandomResizeScale', min_scale=0.1, max_scale=2.0, target_size=(image_size, image_size)),
    dict(type='FixedSizeCrop', crop_size=(image_size, image_size)),
    dict(type='SampleGroundings', max_num=5),  # GROUNDING.MAX_LEN 5
    dict(type='PackSEEMInputs'),
]
test_pipeline = [
    dict(type='LoadImage'),
    dict(type='ResizeShortestEdge', short_edge_length=800, max_size=1333),  # INPUT.MIN/MAX_SIZE_TEST
    dict(type='LoadPanopticAnnotations'),
    dict(type='PackSegInputs'),
]
referring_pipeline = [
    dict(type='LoadImage'),
    dict(type='ResizeShortestEdge', short_edge_length=512, max_size=1333),  # SEEM's grounding evaluation size
    dict(type='LoadReferringAnnotations'),
    dict(type='PackReferringInputs'),
]


def _split(split):  # a helper, not a config key (mmengine drops functions from the config)
    return dict(ann_file=f'panoptic_{split}.json', grounding_file=f'grounding_{split}.json',
                data_prefix=dict(img=f'images/{split}/', seg=f'panoptic_{split}/', sem_seg=f'panoptic_semseg_{split}/'))


train_dataloader = dict(
    batch_size=train_batch_size_per_gpu,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(type='PanopticGroundingDataset', data_root=data_root, **_split('train'),
                 filter_cfg=dict(filter_empty_gt=True), pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type='PanopticGroundingDataset', data_root=data_root, **_split('val'), test_mode=True,
                 pipeline=test_pipeline))
# tools/test.py: grounding of every val sentence (mmengine 0.10.7 validates one dataloader; PQ / mIoU is the val loop)
test_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type='GroundingReferringDataset', data_root=data_root,
                 **{k: v for k, v in _split('val').items() if k != 'data_prefix'},
                 data_prefix=dict(img='images/val/', seg='panoptic_val/'), test_mode=True,
                 pipeline=referring_pipeline))
val_evaluator = ([dict(type='PanopticMetric')] if panoptic_on else []) + [dict(type='SemSegMetric')] + (
    [dict(type='InstanceMaskAPMetric')] if instance_on else [])
test_evaluator = [dict(type='ReferringSegMetric')]

# ---- schedule: AdamW lr 1e-4, wd 0.05, full-model clipping 5.0, MultiStep at 0.88889 / 0.96296 of the schedule ---
optim_wrapper = dict(
    type='AmpOptimWrapper',  # SEEM TRAIN.md: FP16 True (on a CPU-only machine the tools fall back to fp32)
    loss_scale='dynamic',
    optimizer=dict(type='AdamW', lr=base_lr, weight_decay=0.05, betas=(0.9, 0.999)),
    clip_grad=dict(max_norm=5.0, norm_type=2),
    # no backbone multiplier (SEEM LR_MULTIPLIER backbone 0.1): no strategy trains a pretrained backbone weight
    paramwise_cfg=dict(norm_decay_mult=0.0, custom_keys={
        'query_embed': dict(decay_mult=0.0), 'query_feat': dict(decay_mult=0.0), 'level_embed': dict(decay_mult=0.0)}))
param_scheduler = [
    dict(type='MultiStepLR', by_epoch=True, begin=0, end=max_epochs, convert_to_iter_based=True, gamma=0.1,
         milestones=[round(max_epochs * 0.88889), round(max_epochs * 0.96296)]),  # 44, 48 of 50
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=5)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=True),
    checkpoint=dict(type='CheckpointHook', by_epoch=True, interval=5, save_last=True, max_keep_ckpts=3,
                    save_best='panoptic/PQ' if panoptic_on else 'sem_seg/mIoU', rule='greater'))
log_processor = dict(type='LogProcessor', window_size=50, by_epoch=True)
custom_hooks = [dict(type='VocabularyHook'), dict(type='TrainBatchSizeCheckHook'), dict(type='EvaluateAtStartHook')]
# TensorBoard (default_runtime). WandB is optional: uncomment, log in with `wandb login`; entity / project are
# yours (no entity is hard-coded; SEEM's entry.py hard-codes one).
vis_backends = [dict(type='LocalVisBackend'), dict(type='TensorboardVisBackend'),
                # dict(type='WandbVisBackend', init_kwargs=dict(project='seem-ft')),
                ]
visualizer = dict(type='Visualizer', vis_backends=vis_backends, name='visualizer')
