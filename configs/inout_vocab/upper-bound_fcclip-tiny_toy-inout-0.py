# Toy upper bound: fine-tune on configuration 0 (every class labelled).
_base_ = ['./_base_/inout_fcclip-tiny_toy.py']
train_dataloader = dict(dataset=dict(label_config=0))
