# Tiny FC-CLIP that really learns ToyScenes on a 2-core CPU in a few minutes (`make demo`, tests).
# Same architecture as the ConvNeXt-L model (inherited) with a tiny random-init CLIP preset and small
# pixel decoder / decoder; measured results in docs/fcclip.md ("Tiny model on ToyScenes").
_base_ = [
    '../_base_/models/fcclip_convnext_large.py',
    '../_base_/datasets/toy_scenes.py',   # 128x128, 9 base classes in train, +2 novel (star, water) in val
    '../_base_/default_runtime.py',
]
hidden_dim = 64
max_iters = 800

model = dict(
    backbone=dict(
        _delete_=True, type='CLIPBackbone',
        model_name='ovseg-tiny-convnext',   # timm convnext_atto trunk + 2-layer text tower, embed 64
        pretrained=None, allow_random_init=True),  # no CLIP weights on a fresh machine: random, frozen
    pixel_decoder=dict(
        conv_dim=hidden_dim, mask_dim=hidden_dim,
        transformer_enc_layers=1, transformer_nheads=4, transformer_dim_feedforward=128),
    transformer_decoder=dict(
        in_channels=hidden_dim, hidden_dim=hidden_dim, mask_dim=hidden_dim,
        num_queries=16, nheads=4, dim_feedforward=128, dec_layers=3,
        class_head=dict(hidden_dim=hidden_dim, embed_dim=None)),  # embed_dim filled from the CLIP (64)
    criterion=dict(
        matcher=dict(num_points=1024),   # 32x32 = every location of the stride-4 mask at 128x128
        num_points=1024),
    test_cfg=dict(
        instance_on=False,
        # A random-init CLIP has no open-vocabulary knowledge: its out-of-vocab scores are noise, so the
        # tiny model predicts with the trained in-vocab head only (the out-of-vocab pass is skipped).
        geometric_ensemble_alpha=0.0, geometric_ensemble_beta=0.0),
)

train_dataloader = dict(batch_size=4, num_workers=2)
val_dataloader = dict(batch_size=8, num_workers=1)
test_dataloader = val_dataloader

optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-3, weight_decay=0.05, betas=(0.9, 0.999)),
    clip_grad=dict(max_norm=1.0, norm_type=2),
    paramwise_cfg=dict(norm_decay_mult=0.0, custom_keys={
        'query_embed': dict(decay_mult=0.0), 'query_feat': dict(decay_mult=0.0),
        'level_embed': dict(decay_mult=0.0)}))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, begin=0, end=20, by_epoch=False),
    dict(type='MultiStepLR', begin=0, end=max_iters, by_epoch=False, milestones=[int(max_iters * 0.85)],
         gamma=0.1),
]
train_cfg = dict(type='ResumableIterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')

default_hooks = dict(
    logger=dict(interval=20),
    checkpoint=dict(interval=max_iters, max_keep_ckpts=1, save_last=True))
vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(type='Visualizer', vis_backends=vis_backends, name='visualizer')
log_processor = dict(window_size=20)
custom_hooks = [dict(type='VocabularyHook')]
# Test-only runs read the train vocabulary from the train dataloader config (ToyScenes train split).
randomness = dict(seed=0)
