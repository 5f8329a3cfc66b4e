# The study's fine-tuning schedule (seed 003: "FT ... 1000 iter", batch 8 on 2 GPUs, from the released COCO
# FC-CLIP): 1,000 iterations of FC-CLIP's optimiser (AdamW 1e-4, weight decay 0.05, clip 0.01, AMP on GPU;
# Base-COCO-PanopticSegmentation.yaml) at a constant learning rate (the COCO steps lie far beyond 1,000), one
# validation on the full Cityscapes val and one checkpoint at the end.
_base_ = ['../../_base_/schedules/schedule_368750it_adamw.py']
max_iters = 1000
param_scheduler = [dict(type='ConstantLR', factor=1.0, begin=0, end=max_iters, by_epoch=False)]
train_cfg = dict(type='ResumableIterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters)
auto_scale_lr = dict(enable=False, base_batch_size=8)
