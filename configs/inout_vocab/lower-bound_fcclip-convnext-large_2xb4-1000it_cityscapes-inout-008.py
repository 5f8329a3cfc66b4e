# Lower bound: fine-tune on configuration 008 (thing classes deleted: no target).
# Published (ConvNeXt-L, seed 003 results table, PQ all / in / out): 33.231 / 57.398 / 0
# (a second run: 34.052 / 58.818 / 0).
_base_ = ['./_base_/inout_fcclip_convnext-large.py']
train_dataloader = dict(dataset=dict(ann_file='gtFine/inout/cityscapes_panoptic_train_008.json'))
