# Toy lower bound: fine-tune on configuration 6 (all 6 thing classes deleted: no target).
_base_ = ['./_base_/inout_fcclip-tiny_toy.py']
train_dataloader = dict(dataset=dict(label_config=6))
