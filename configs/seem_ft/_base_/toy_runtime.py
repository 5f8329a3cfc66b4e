# Runtime of the SEEM CPU toys: ovseg's default runtime, AdamW with SEEM's weight decay and clipping, short logs.
_base_ = ['../../_base_/default_runtime.py']
max_iters = 200
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-3, weight_decay=0.05, betas=(0.9, 0.999)),  # SEEM: AdamW, wd 0.05
    clip_grad=dict(max_norm=5.0, norm_type=2),  # SEEM SOLVER.CLIP_GRADIENTS: full model, L2 norm 5.0
    paramwise_cfg=dict(norm_decay_mult=0.0, custom_keys={
        'query_embed': dict(decay_mult=0.0), 'query_feat': dict(decay_mult=0.0), 'level_embed': dict(decay_mult=0.0)}))
param_scheduler = [dict(type='ConstantLR', factor=1.0, begin=0, end=max_iters, by_epoch=False)]
train_cfg = dict(type='ResumableIterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(logger=dict(interval=20), checkpoint=dict(interval=max_iters, max_keep_ckpts=1, save_last=True))
vis_backends = [dict(type='LocalVisBackend'), dict(type='TensorboardVisBackend')]
visualizer = dict(type='Visualizer', vis_backends=vis_backends, name='visualizer')
log_processor = dict(window_size=20)
# VocabularyHook: classes from the data; TrainBatchSizeCheckHook: train_batch_size_total = per_gpu x world size x
# accumulation or a clear error; EvaluateAtStartHook: validation before training when evaluate_at_start=True.
custom_hooks = [dict(type='VocabularyHook'), dict(type='TrainBatchSizeCheckHook'), dict(type='EvaluateAtStartHook')]
evaluate_at_start = False  # SEEM EVAL_AT_START
randomness = dict(seed=0)
