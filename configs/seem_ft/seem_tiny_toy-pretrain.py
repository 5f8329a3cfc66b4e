# The shared "pretrained" tiny SEEM of the toy strategy study: the whole model (backbone, pixel decoder, decoder and
# the language encoder) trained from scratch on another ToyScenes draw (seed 1, star and water held out) with
# panoptic + grounding losses. Its last checkpoint (work_dirs/seem_tiny_toy-pretrain/iter_{max_iters}.pth) is the
# load_from of the four seem_tiny_toy-{frozen-backbone|backbone-adapter}-{decoder-adapter|full-decoder}.py configs.
_base_ = ['./_base_/seem_tiny_toy_model.py', './_base_/toy_seem_data.py', './_base_/toy_runtime.py']
max_iters = 300
toy_root = 'data/toy_scenes_seem_pretrain'
toy_generate = dict(num_train=200, num_val=50, size=(128, 128), seed=1, novel_classes=['star', 'water'])
# "Pretraining" trains everything, the language encoder too (SEEM starts from UniCL / X-Decoder weights; a random
# tiny text tower has to learn its words here). Fine-tuning configs keep it frozen (SEEM FIX_PARAM.lang_encoder).
model = dict(text_encoder=dict(frozen=False))
train_dataloader = dict(dataset=dict(data_root=toy_root, generate=toy_generate))
val_dataloader = dict(dataset=dict(data_root=toy_root, generate=toy_generate))
test_dataloader = dict(dataset=dict(data_root=toy_root, generate=toy_generate))
optim_wrapper = dict(optimizer=dict(lr=1e-3))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, begin=0, end=20, by_epoch=False),
    dict(type='MultiStepLR', begin=0, end=max_iters, by_epoch=False, milestones=[int(max_iters * 0.85)], gamma=0.1),
]
train_cfg = dict(type='ResumableIterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters)
default_hooks = dict(checkpoint=dict(interval=max_iters, max_keep_ckpts=1, save_last=True))
