# FC-CLIP RN50 (openai CLIP), same recipe as the ConvNeXt-L config (reference notes §2; RN yaml changes only
# the CLIP model, EMBED_DIM 1024 and ENSEMBLE_ON_VALID_MASK).
_base_ = [
    '../_base_/models/fcclip_r50.py',
    '../_base_/datasets/coco_panoptic.py',
    '../_base_/default_runtime.py',
    '../_base_/schedules/schedule_368750it_adamw.py',
]
train_vocabulary = 'coco_panoptic'
custom_hooks = [dict(type='VocabularyHook')]
auto_scale_lr = dict(enable=False, base_batch_size=16)
