# Sa2VA mask-caption SFT (seed 002's two-stage loop, rebuilt so every loss trains: projects/sa2va_sft/sa2va_sft/
# mask_caption.py). The seed's values (its config.py): lr 1e-5, batch 2 per GPU x accumulation 4, clip 1.0, EMA decay
# 0.999, LoRA r128 / alpha 256 / dropout 0.05, losses BCE 2.0 / Dice 0.5 / IoU 1.0 / caption 1.0. What trains is
# Sa2VA's set (sa2va_trainable.py); captions come from the EMA teacher and are kept as SFT targets when the teacher
# re-finds the region from them with IoU >= 0.5. Leaves give the release folder, the data mix and the schedule.
_base_ = ['./sa2va_sft_recipe.py']

model = dict(
    type='MaskCaptionSa2VA',
    captioner='ema',  # the seed's EMA teacher; 'student' captions with the student (eval mode, no grad)
    accept_iou=0.5,  # rejection-sampling threshold (Pr@0.5, the usual "correct" referring-segmentation IoU)
    caption_loss_weight=1.0,  # seed: caption_loss_weight
    mask_loss=dict(mask_weight=2.0, dice_weight=0.5, iou_weight=1.0),  # seed: mask / dice / iou loss weights
    answer_loss_weight=1.0,  # Sa2VA's llm_loss on the stage-2 answer ("It is [SEG].")
    stage2_captions='all',  # stage 2 trains on every caption; 'accepted': only on accepted ones
    max_caption_tokens=64)

custom_hooks = [
    dict(type='TrainableCheckpointHook'),
    # the teacher: EMA of the trainable tensors only (LoRA, mlp1, mask decoder, text_hidden_fcs, token rows), kept in
    # checkpoints so --resume continues exactly
    dict(type='TrainableEMAHook', decay=0.999),
]

optim_wrapper = dict(
    accumulative_counts=4,  # seed: gradient_accumulation_steps 4
    optimizer=dict(lr=1e-5))  # seed: learning_rate 1e-5 (Sa2VA's own SFT: 4e-5)

# The caption view and the segmentation view: InternVL tiles of both, SAM2 input of the second.
region_pipeline = [
    dict(type='LoadRegionPair'),
    dict(type='FormatMaskCaptionInputs', image_size=448, max_num=12, use_thumbnail=True, sam_image_size=1024),
    dict(type='PackMaskCaptionInputs'),
]
referring_region_pipeline = [
    dict(type='LoadImage'),
    dict(type='LoadReferringAnnotations'),
    dict(type='ReferringToRegionPair'),
    dict(type='FormatMaskCaptionInputs', image_size=448, max_num=12, use_thumbnail=True, sam_image_size=1024),
    dict(type='PackMaskCaptionInputs'),
]
