# Upper bound: fine-tune on configuration 000 (every class labelled).
# Published (R50, seed 003 results table, PQ all / in / out): 58.197 / 63.995 / 50.224.
_base_ = ['./_base_/inout_fcclip_r50.py']
train_dataloader = dict(dataset=dict(ann_file='gtFine/inout/cityscapes_panoptic_train_000.json'))
