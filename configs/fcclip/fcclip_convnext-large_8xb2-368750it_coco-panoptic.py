# FC-CLIP ConvNeXt-L, published training recipe (Base-COCO-PanopticSegmentation.yaml): COCO panoptic (133 classes),
# 8 GPUs x 2
# images = batch 16, 368,750 iterations (~50 epochs), AdamW lr 1e-4 / wd 0.05, full-model grad clip 0.01,
# LSJ (flip, ResizeScale 0.1-2.0, 1024x1024 crop), AMP. Launch:
#   bash tools/dist_train.sh configs/fcclip/fcclip_convnext-large_8xb2-368750it_coco-panoptic.py 8
# (AmpOptimWrapper, fp16 + dynamic loss scale, comes from the schedule: the official recipe trains with
# SOLVER.AMP.ENABLED True and keeps the pixel decoder in fp32.)
_base_ = [
    '../_base_/models/fcclip_convnext_large.py',
    '../_base_/datasets/coco_panoptic_ade20k_val.py',  # LSJ 1024 COCO train, batch 2/GPU; ADE-150 val
    '../_base_/default_runtime.py',
    '../_base_/schedules/schedule_368750it_adamw.py',  # AdamW 1e-4, wd 0.05, clip 0.01, steps 327778/355092
]
# Train vocabulary = the COCO dataset's metainfo (VocabularyHook.before_train); for test-only runs of this
# config it comes from here (the seen/unseen mask of the geometric ensemble needs it).
train_vocabulary = 'coco_panoptic'
custom_hooks = [dict(type='VocabularyHook')]
auto_scale_lr = dict(enable=False, base_batch_size=16)  # IMS_PER_BATCH 16
# Checkpoint selection as the release: validate on ADE20K-150 panoptic every 5,000 iterations (TEST.EVAL_PERIOD,
# train_cfg.val_interval in the schedule), keep the best ADE20K PQ (bytedance/fc-clip issue #13) and every
# 5,000-iteration checkpoint (CHECKPOINT_PERIOD 5000; detectron2's PeriodicCheckpointer deletes none).
# ..._coco-panoptic-cocoval.py validates on COCO instead.
default_hooks = dict(checkpoint=dict(interval=5000, max_keep_ckpts=-1, save_best='panoptic/PQ', rule='greater'))
