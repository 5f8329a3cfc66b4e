# Sa2VA referring-segmentation SFT in small (issue 12): a tiny InternViT (56² tiles, 4 image tokens), a 2-layer
# Qwen2, a tiny SAM2 (256²) and an in-memory word tokenizer, fine-tuned on ToyScenes referring expressions on a
# 2-core CPU. Same model code, losses, LoRA and trainable set as the real configs; sizes, LoRA rank and learning
# rate are the toy's (the published recipe: sa2va_sft/_base_/sa2va_sft_recipe.py).
_base_ = ['../_base_/default_runtime.py', './_base_/sa2va_trainable.py']
custom_imports = dict(imports=['projects.sa2va_sft.sa2va_sft'], allow_failed_imports=False)

max_iters = 600
toy_root = 'data/toy_scenes_referring'
toy_generate = dict(num_train=200, num_val=50, size=(128, 128), seed=0, novel_classes=[])
tile = 56
sam_size = 256  # TINY_SAM2's image_size

model = dict(
    type='Sa2VA',
    vision_config=dict(hidden_size=32, num_attention_heads=4, intermediate_size=64, num_hidden_layers=2,
                       image_size=tile, patch_size=14, norm_type='layer_norm', qk_normalization=False,
                       qkv_bias=True),
    llm_config=dict(model_type='qwen2', num_hidden_layers=2, hidden_size=64, num_attention_heads=4,
                    num_key_value_heads=2, intermediate_size=128, max_position_embeddings=4096),
    grounding_encoder=dict(sam2_cfg='tiny'),
    tokenizer=dict(type='toy_referring'),
    template='qwen_chat',
    mask_loss=dict(num_points=1024),  # 32x32 of the 64x64 low-res masks (Sa2VA: 12544 of 256x256)
    max_new_tokens=12)

# LoRA on every linear layer of the LLM but lm_head (Sa2VA's targets). The toy's LLM is random, not pretrained, so
# its LoRA rank equals the hidden width (64, alpha 128; Sa2VA: 128 / 256 on a pretrained LLM).
peft = [dict(type='LoRA', module='language_model',
             targets=['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'],
             r=64, alpha=128, dropout=0.05)]
# trainable_params: Sa2VA's set, from _base_/sa2va_trainable.py (LoRA, mlp1, mask decoder, text_hidden_fcs, rows).

train_pipeline = [
    dict(type='LoadImage'),
    dict(type='SampleReferringExpressions', num=2),  # Sa2VA: 5 expressions of an image per conversation
    dict(type='LoadReferringAnnotations'),
    dict(type='FormatSa2VAInputs', image_size=tile, max_num=1, use_thumbnail=False, sam_image_size=sam_size),
    dict(type='PackSa2VAInputs'),
]
test_pipeline = [
    dict(type='LoadImage'),
    dict(type='LoadReferringAnnotations'),
    dict(type='FormatSa2VAInputs', image_size=tile, max_num=1, use_thumbnail=False, sam_image_size=sam_size,
         train=False),
    dict(type='PackSa2VAInputs'),
]
train_dataloader = dict(
    batch_size=4, num_workers=2, persistent_workers=True,
    sampler=dict(type='ResumableInfiniteSampler', shuffle=True),
    dataset=dict(type='ToyReferringDataset', data_root=toy_root, split='train', generate=toy_generate,
                 group='image', pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=4, num_workers=1, persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type='ToyReferringDataset', data_root=toy_root, split='val', generate=toy_generate,
                 test_mode=True, pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = [dict(type='ReferringSegMetric')]
test_evaluator = val_evaluator

# Sa2VA's optimiser (AdamW, betas 0.9/0.999, wd 0.05, clip 1.0) at the toy's learning rate; the token rows get no
# weight decay (only the added tokens' rows learn, see Sa2VA.train_new_token_rows_only).
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-3, betas=(0.9, 0.999), weight_decay=0.05),
    clip_grad=dict(max_norm=1.0, norm_type=2),
    paramwise_cfg=dict(custom_keys={'embed_tokens': dict(decay_mult=0.0), 'lm_head': dict(decay_mult=0.0)}))
param_scheduler = [  # Sa2VA: LinearLR from 1e-5x over the first 5 %, then cosine to 0
    dict(type='LinearLR', start_factor=1e-5, by_epoch=False, begin=0, end=int(0.05 * max_iters)),
    dict(type='CosineAnnealingLR', eta_min=0.0, by_epoch=False, begin=int(0.05 * max_iters), end=max_iters),
]
train_cfg = dict(type='ResumableIterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(logger=dict(interval=20), checkpoint=dict(interval=max_iters, max_keep_ckpts=1))
vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(type='Visualizer', vis_backends=vis_backends, name='visualizer')
log_processor = dict(window_size=20)
