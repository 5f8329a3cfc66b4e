# FTZS: fine-tune on configuration 008 whose deleted thing segments were relabelled by the zero-shot model
# (tools/inout_vocab/ftzs_pseudo_labels.py; IoU > 0.5 with its panoptic prediction, else dropped).
# Published (R50, seed 003 results table, PQ all / in / out): 52.972 / 58.519 / 45.346.
_base_ = ['./_base_/inout_fcclip_r50.py']
train_dataloader = dict(dataset=dict(ann_file='gtFine/inout/cityscapes_panoptic_train_ftzs_008.json'))
