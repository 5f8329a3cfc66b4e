# The in-/out-of-vocabulary study in small (issue 10, part 4): the tiny FC-CLIP pretrained on a full ToyScenes
# draw (pretrain_fcclip-tiny_toy-scenes-full.py) is fine-tuned on ToyScenes seed 0 whose 6 thing classes are
# deleted progressively (label configurations 0..6, ToyLabelConfigDataset), and evaluated on the full val split:
# PQ all / stuff (= in-vocabulary) / things (= out-of-vocabulary at configuration 6).
_base_ = ['../../fcclip/fcclip_tiny_toy-scenes.py']
custom_imports = dict(imports=['projects.inout_vocab.inout_vocab'], allow_failed_imports=False)
toy_root = 'data/toy_scenes_inout'
toy_generate = dict(num_train=200, num_val=50, size=(128, 128), seed=0, novel_classes=[],
                    min_things=2, max_things=6)  # busier scenes than the pretraining draw (1-4): a domain gap
zero_shot_checkpoint = 'work_dirs/inout_vocab_toy/zero_shot.pth'
load_from = zero_shot_checkpoint
max_iters = 200  # the study's short fine-tuning (1,000 it at batch 8) scaled to the toy set

train_dataloader = dict(dataset=dict(
    _delete_=True, type='ToyLabelConfigDataset', data_root=toy_root, split='train', label_config=0,
    generate=toy_generate, pipeline={{_base_.train_pipeline}}))
val_dataloader = dict(dataset=dict(data_root=toy_root, generate=toy_generate))
test_dataloader = val_dataloader

# Fine-tuning at a tenth of the tiny model's pretraining LR, constant, as the Cityscapes recipe.
optim_wrapper = dict(optimizer=dict(lr=1e-4))
param_scheduler = [dict(type='ConstantLR', factor=1.0, begin=0, end=max_iters, by_epoch=False)]
train_cfg = dict(type='ResumableIterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters)
default_hooks = dict(checkpoint=dict(interval=max_iters, max_keep_ckpts=1, save_last=True))
