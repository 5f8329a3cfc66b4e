# The toy study's "COCO checkpoint": the tiny FC-CLIP trained on another ToyScenes draw (seed 1) with every class
# labelled. Its final checkpoint, copied to work_dirs/inout_vocab_toy/zero_shot.pth, plays the zero-shot model of
# every toy approach (tools/inout_vocab/toy_study.py runs it first).
_base_ = ['../fcclip/fcclip_tiny_toy-scenes.py']
toy_root = 'data/toy_scenes_inout_pretrain'
toy_generate = dict(num_train=200, num_val=50, size=(128, 128), seed=1, novel_classes=[])
train_dataloader = dict(dataset=dict(data_root=toy_root, generate=toy_generate))
val_dataloader = dict(dataset=dict(data_root=toy_root, generate=toy_generate))
test_dataloader = val_dataloader
