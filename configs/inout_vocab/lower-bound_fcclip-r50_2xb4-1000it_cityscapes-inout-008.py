# Lower bound: fine-tune on configuration 008 (thing classes deleted: no target).
# Published (R50, seed 003 results table, PQ all / in / out): 37.965 / 65.575 / 0.
_base_ = ['./_base_/inout_fcclip_r50.py']
train_dataloader = dict(dataset=dict(ann_file='gtFine/inout/cityscapes_panoptic_train_008.json'))
