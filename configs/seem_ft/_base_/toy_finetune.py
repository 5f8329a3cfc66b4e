# Fine-tuning of the SEEM CPU toys: every strategy starts from the same tiny "pretrained" checkpoint
# (seem_tiny_toy-pretrain.py, 300 iterations on ToyScenes seed 1 without star / water) and trains 150 iterations at
# batch 4 (3 epochs of the 200 fine-tuning images) with the same optimiser, so only the trainable set differs.
_base_ = ['./toy_runtime.py']
pretrained_checkpoint = 'work_dirs/seem_tiny_toy-pretrain/iter_300.pth'
load_from = pretrained_checkpoint
max_iters = 150
# AdamW at the tiny model's learning rate (SEEM: 1e-4 at batch 16 for the 1024² models), 10-iteration warm-up.
optim_wrapper = dict(optimizer=dict(lr=1e-3))
param_scheduler = [dict(type='LinearLR', start_factor=0.1, begin=0, end=10, by_epoch=False),
                   dict(type='ConstantLR', factor=1.0, begin=10, end=max_iters, by_epoch=False)]
train_cfg = dict(type='ResumableIterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters)
default_hooks = dict(checkpoint=dict(interval=max_iters, max_keep_ckpts=1, save_last=True))
