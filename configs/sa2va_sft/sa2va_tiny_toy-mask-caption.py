# Sa2VA mask-caption SFT in small (issue 13): the part-1 toy model (sa2va_tiny_toy-referring.py, trained first) goes
# through the two-stage loop on a 2-core CPU. Each batch mixes 2 ToyScenes frame pairs (objects moved between two
# renders: caption the region in render A, find it again in render B) with 2 ToyScenes referring regions (their
# expression is the caption: stage 2 + caption LM loss, which is how the toy learns to caption at all). Same model
# code, losses, trainable set and EMA teacher as the real configs; sizes, learning rate and EMA decay are the toy's.
#   python tools/train.py configs/sa2va_sft/sa2va_tiny_toy-referring.py        # part 1 (writes iter_600.pth)
#   python tools/train.py configs/sa2va_sft/sa2va_tiny_toy-mask-caption.py     # this loop, from that checkpoint
_base_ = ['./sa2va_tiny_toy-referring.py']

max_iters = 400
load_from = 'work_dirs/sa2va_tiny_toy-referring/iter_600.pth'  # the part-1 toy checkpoint
pairs_root = 'data/toy_frame_pairs'
pairs_generate = dict(num_train=200, num_val=50, size=(128, 128), seed=0)
toy_root = 'data/toy_scenes_referring'  # the part-1 toy's ToyScenes referring copy
toy_generate = dict(num_train=200, num_val=50, size=(128, 128), seed=0, novel_classes=[])
tile, sam_size = 56, 256

model = dict(
    type='MaskCaptionSa2VA',
    captioner='ema', accept_iou=0.5, caption_loss_weight=1.0, answer_loss_weight=1.0, stage2_captions='all',
    mask_loss=dict(mask_weight=2.0, dice_weight=0.5, iou_weight=1.0, num_points=1024),
    max_caption_tokens=12)  # toy expressions have at most 6 words

custom_hooks = [
    dict(type='TrainableCheckpointHook'),
    # the seed's decay is 0.999 (real configs); over a 400-iteration toy run that teacher would barely move from
    # the part-1 model, so the toy averages faster
    dict(type='TrainableEMAHook', decay=0.99),
]

format_inputs = dict(type='FormatMaskCaptionInputs', image_size=tile, max_num=1, use_thumbnail=False,
                     sam_image_size=sam_size)
pair_pipeline = [dict(type='LoadRegionPair'), format_inputs, dict(type='PackMaskCaptionInputs')]
referring_pipeline = [dict(type='LoadImage'), dict(type='LoadReferringAnnotations'),
                      dict(type='ReferringToRegionPair'), format_inputs, dict(type='PackMaskCaptionInputs')]
train_dataloader = dict(
    batch_size=4, num_workers=2, persistent_workers=True,
    sampler=dict(_delete_=True, type='MultiSourceSampler', batch_size=4, counts=dict(pairs=2, referring=2)),
    dataset=dict(
        _delete_=True, type='MultiSourceDataset', metainfo='pairs',
        sources=dict(
            pairs=dict(type='ToyFramePairDataset', data_root=pairs_root, split='train', generate=pairs_generate,
                       pipeline=pair_pipeline),
            referring=dict(type='ToyReferringDataset', data_root=toy_root, split='train', generate=toy_generate,
                           group='ref', pipeline=referring_pipeline))))
# Validation: re-segmentation of the val frame pairs from the model's own captions (the loop's criterion).
val_dataloader = dict(
    batch_size=4, num_workers=1, persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(_delete_=True, type='ToyFramePairDataset', data_root=pairs_root, split='val',
                 generate=pairs_generate, test_mode=True, pipeline=pair_pipeline))
val_evaluator = [dict(type='ReferringSegMetric')]
test_dataloader = val_dataloader
test_evaluator = val_evaluator

optim_wrapper = dict(optimizer=dict(lr=5e-4))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=False, begin=0, end=20),
    dict(type='CosineAnnealingLR', eta_min=0.0, by_epoch=False, begin=20, end=max_iters),
]
train_cfg = dict(type='ResumableIterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters)
default_hooks = dict(logger=dict(interval=20), checkpoint=dict(interval=max_iters, max_keep_ckpts=1))
