# Sa2VA's SFT recipe (Sa2VA v1 configs/sa2va_4b.py and v2 sa2va_finetune.py): LoRA r128/alpha256/
# dropout 0.05 on every LLM linear but lm_head; trainable: LoRA, mlp1, SAM2 mask decoder, text_hidden_fcs and the
# added tokens' embedding / output rows; AdamW lr 4e-5, betas (0.9, 0.999), wd 0.05, clip 1.0; LinearLR from 1e-5x
# over the first 5 % then cosine to 0; batch 2 per GPU x accumulation 4 x 8 GPUs; bf16; InternVL tiling 448 (1..12
# tiles + thumbnail), SAM2 at 1024. Leaves give the release folder, the data and the schedule length.
_base_ = ['../../_base_/default_runtime.py', './sa2va_trainable.py']
custom_imports = dict(imports=['projects.sa2va_sft.sa2va_sft'], allow_failed_imports=False)

release = 'checkpoints/Sa2VA-4B'  # a downloaded ByteDance/Sa2VA-4B folder (config.json + safetensors + tokenizer)
max_iters = 10000
model = dict(type='Sa2VA', release=release, max_new_tokens=2048, gradient_checkpointing=True)
peft = [dict(type='LoRA', module='language_model',
             targets=['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'],
             r=128, alpha=256, dropout=0.05)]

train_pipeline = [
    dict(type='LoadImage'),
    dict(type='SampleReferringExpressions', num=5),  # num_classes_per_sample 5, with replacement
    dict(type='LoadReferringAnnotations'),
    dict(type='FormatSa2VAInputs', image_size=448, max_num=12, use_thumbnail=True, sam_image_size=1024),
    dict(type='PackSa2VAInputs'),
]
test_pipeline = [
    dict(type='LoadImage'),
    dict(type='LoadReferringAnnotations'),
    dict(type='FormatSa2VAInputs', image_size=448, max_num=12, use_thumbnail=True, sam_image_size=1024, train=False),
    dict(type='PackSa2VAInputs'),
]
refcoco_root = 'data/ref_seg'  # refcoco/, refcoco+/, refcocog/ (REFER) and coco2014/train2014
train_dataloader = dict(
    batch_size=2, num_workers=4, persistent_workers=True,
    sampler=dict(type='ResumableInfiniteSampler', shuffle=True),
    dataset=dict(type='RefCocoDataset', data_root=refcoco_root, dataset='refcoco', split='train', group='image',
                 pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1, num_workers=2, persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type='RefCocoDataset', data_root=refcoco_root, dataset='refcoco', split='val', test_mode=True,
                 pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = [dict(type='ReferringSegMetric')]
test_evaluator = val_evaluator

optim_wrapper = dict(
    type='AmpOptimWrapper', dtype='bfloat16',  # bf16 on GPU; tools fall back to fp32 on a CPU with a warning
    accumulative_counts=4,
    optimizer=dict(type='AdamW', lr=4e-5, betas=(0.9, 0.999), weight_decay=0.05),
    clip_grad=dict(max_norm=1.0, norm_type=2),
    paramwise_cfg=dict(custom_keys={'embed_tokens': dict(decay_mult=0.0), 'lm_head': dict(decay_mult=0.0)}))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-5, by_epoch=False, begin=0, end=int(0.05 * max_iters)),
    dict(type='CosineAnnealingLR', eta_min=0.0, by_epoch=False, begin=int(0.05 * max_iters), end=max_iters),
]
train_cfg = dict(type='ResumableIterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(logger=dict(interval=10), checkpoint=dict(interval=1000, max_keep_ckpts=3, save_last=True))
