# FC-CLIP / Mask2Former COCO panoptic schedule (Base-COCO-PanopticSegmentation.yaml):
# MAX_ITER 368750 at IMS_PER_BATCH 16 (~50 epochs), STEPS (327778, 355092), gamma 0.1 (d2 default),
# WARMUP_ITERS 10 with WARMUP_FACTOR 1.0 (i.e. effectively no warm-up), AdamW BASE_LR 1e-4, WEIGHT_DECAY 0.05,
# full-model gradient clipping at L2 norm 0.01, AMP on (SOLVER.AMP.ENABLED True; on a machine without CUDA the
# tools fall back to fp32 OptimWrapper with a warning, since mmengine's AmpOptimWrapper needs an accelerator).
max_iters = 368750
optim_wrapper = dict(
    type='AmpOptimWrapper',
    loss_scale='dynamic',
    # Parameter groups of FC-CLIP's train_net.py build_optimizer (by module type, not name patterns):
    # norm layers SOLVER.WEIGHT_DECAY_NORM 0.0 (d2 default), nn.Embedding (query_feat/query_embed/decoder
    # level_embed/void_embedding) SOLVER.WEIGHT_DECAY_EMBED 0.0 (fcclip/config.py), plain nn.Parameters
    # (pixel-decoder level_embed, logit_scale) WEIGHT_DECAY 0.05, modules named *backbone* lr x 0.1
    # (BACKBONE_MULTIPLIER; the CLIP is frozen, so no group), frozen parameters left out.
    constructor='Detectron2OptimWrapperConstructor',
    optimizer=dict(type='AdamW', lr=1e-4, weight_decay=0.05, betas=(0.9, 0.999)),
    clip_grad=dict(max_norm=0.01, norm_type=2),
    paramwise_cfg=dict(backbone_multiplier=0.1, weight_decay_norm=0.0, weight_decay_embed=0.0),
)
param_scheduler = [
    dict(type='MultiStepLR', begin=0, end=max_iters, by_epoch=False, milestones=[327778, 355092], gamma=0.1),
]
# ovseg's loop resumes through sampler.fast_forward instead of re-loading every trained sample.
train_cfg = dict(type='ResumableIterBasedTrainLoop', max_iters=max_iters, val_interval=5000)  # EVAL_PERIOD 5000
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
