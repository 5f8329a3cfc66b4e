# Engine-test config: a linear model trained with the ovseg runtime (used by resume and DDP tests).
_base_ = ['../../configs/_base_/default_runtime.py']
custom_imports = dict(imports=['tests.helpers.toy_modules'], allow_failed_imports=False)

model = dict(type='ToyRegressor', dim=4)
train_dataloader = dict(
    batch_size=4, num_workers=0,
    sampler=dict(type='ResumableInfiniteSampler', shuffle=True, seed=3),
    dataset=dict(type='ToyRegressionDataset', size=64))
val_dataloader = dict(
    batch_size=8, num_workers=0, sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type='ToyRegressionDataset', size=16, seed=1))
test_dataloader = val_dataloader
val_evaluator = dict(type='ToyMSEMetric')
test_evaluator = val_evaluator
optim_wrapper = dict(optimizer=dict(type='SGD', lr=0.05, momentum=0.9))
param_scheduler = [dict(type='MultiStepLR', by_epoch=False, milestones=[12], gamma=0.5)]
train_cfg = dict(type='ResumableIterBasedTrainLoop', max_iters=20, val_interval=10)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(
    logger=dict(interval=5),
    checkpoint=dict(interval=10, max_keep_ckpts=5))
vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(type='Visualizer', vis_backends=vis_backends, name='visualizer')
