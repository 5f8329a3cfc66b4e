# Runtime shared by every ovseg config: iteration-based loops, checkpoints, logging, TensorBoard.
default_scope = 'ovseg'
# mmengine's Runner + the `peft` / `trainable_params` config keys, a trainable-only optimizer (ovseg/engine/runner.py)
runner_type = 'OVSegRunner'

default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    # Mask2Former/FC-CLIP style: save every 5000 iters (cfg.TEST.EVAL_PERIOD / CHECKPOINT_PERIOD), keep 3.
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=5000, save_last=True, max_keep_ckpts=3),
    sampler_seed=dict(type='DistSamplerSeedHook'),
)

# nccl on GPU, gloo on CPU: resolved by ovseg.utils.dist_env at launch (tools/train.py), 'auto' here.
# dist_cfg.timeout (seconds) bounds every collective: unset = 600 s on CPU/gloo (ovseg's choice, see
# ovseg/utils/dist_env.py) and torch's default on GPU/NCCL (10 min; its watchdog then aborts the process).
env_cfg = dict(
    cudnn_benchmark=False,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    dist_cfg=dict(backend='auto'),
)

vis_backends = [dict(type='LocalVisBackend'), dict(type='TensorboardVisBackend')]
visualizer = dict(type='Visualizer', vis_backends=vis_backends, name='visualizer')
log_processor = dict(type='LogProcessor', window_size=50, by_epoch=False)

log_level = 'INFO'
load_from = None
resume = False
randomness = dict(seed=0)
