# Toy FTZS: configuration 6 with the deleted segments relabelled by the zero-shot model
# (tools/inout_vocab/ftzs_pseudo_labels.py writes the JSON; tools/inout_vocab/toy_study.py runs it).
_base_ = ['./_base_/inout_fcclip-tiny_toy.py']
ftzs_json = 'inout/panoptic_train_ftzs_006.json'  # under the toy data root, written by the FTZS tool
train_dataloader = dict(dataset=dict(label_config=6, ann_file=ftzs_json))
