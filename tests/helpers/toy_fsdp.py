# Engine-test config: the FSDP fragment on a toy MLP with a LoRA-adapted frozen trunk and a trainable head.
_base_ = ['../../configs/_base_/default_runtime.py', '../../configs/_base_/fsdp.py']
runner_type = 'OVSegFlexibleRunner'
custom_imports = dict(imports=['tests.helpers.toy_modules', 'tests.helpers.fsdp_toy'], allow_failed_imports=False)

model = dict(type='ToyMLPRegressor', dim=8, hidden=32)
# LoRA on both trunk layers (their base weights stay frozen) + the head trained in full
peft = [dict(type='LoRA', targets=['trunk.0', 'trunk.2'], r=2, alpha=4)]
trainable_params = dict(train=['lora_', r'^head\.'])
# small units so the toy model is split into several FSDP units (trunk layers, head)
strategy = dict(model_wrapper=dict(auto_wrap_policy=dict(min_num_params=40)))

train_dataloader = dict(
    batch_size=4, num_workers=0,
    sampler=dict(type='ResumableInfiniteSampler', shuffle=True, seed=3),
    dataset=dict(type='ToyRegressionDataset', size=64, dim=8))
optim_wrapper = dict(optimizer=dict(type='AdamW', lr=0.01, weight_decay=0.01), clip_grad=dict(max_norm=1.0))
param_scheduler = [dict(type='MultiStepLR', by_epoch=False, milestones=[3], gamma=0.5)]
train_cfg = dict(type='ResumableIterBasedTrainLoop', max_iters=4, val_interval=100)
default_hooks = dict(logger=dict(interval=1), checkpoint=dict(interval=2, max_keep_ckpts=3))
vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(type='Visualizer', vis_backends=vis_backends, name='visualizer')
