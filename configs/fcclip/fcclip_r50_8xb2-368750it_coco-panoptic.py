# FC-CLIP RN50 (openai CLIP), same recipe as the ConvNeXt-L config (Base-COCO-PanopticSegmentation.yaml;
# RN yaml changes only
# the CLIP model, EMBED_DIM 1024 and ENSEMBLE_ON_VALID_MASK).
_base_ = [
    '../_base_/models/fcclip_r50.py',
    '../_base_/datasets/coco_panoptic_ade20k_val.py',  # COCO train, ADE-150 val
    '../_base_/default_runtime.py',
    '../_base_/schedules/schedule_368750it_adamw.py',
]
train_vocabulary = 'coco_panoptic'
custom_hooks = [dict(type='VocabularyHook')]
auto_scale_lr = dict(enable=False, base_batch_size=16)
# Checkpoint selection as the release: validate on ADE20K-150 panoptic every 5,000 iterations (TEST.EVAL_PERIOD,
# train_cfg.val_interval in the schedule), keep the best ADE20K PQ (bytedance/fc-clip issue #13) and every
# 5,000-iteration checkpoint (CHECKPOINT_PERIOD 5000; detectron2's PeriodicCheckpointer deletes none).
# ..._coco-panoptic-cocoval.py validates on COCO instead.
default_hooks = dict(checkpoint=dict(interval=5000, max_keep_ckpts=-1, save_best='panoptic/PQ', rule='greater'))
