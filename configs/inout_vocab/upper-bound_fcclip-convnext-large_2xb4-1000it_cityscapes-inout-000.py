# Upper bound: fine-tune on configuration 000 (every class labelled).
# Published (ConvNeXt-L): not reported in the study.
_base_ = ['./_base_/inout_fcclip_convnext-large.py']
train_dataloader = dict(dataset=dict(ann_file='gtFine/inout/cityscapes_panoptic_train_000.json'))
