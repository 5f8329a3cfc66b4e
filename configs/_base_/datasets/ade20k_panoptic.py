# ADE20K-150 panoptic val (FC-CLIP `openvocab_ade20k_panoptic_val`: PQ, mAP, mIoU; test size 800/1333).
# JSON/PNGs made by tools/dataset_converters/prepare_ade20k_panoptic.py (detectron2 layout).
_base_ = ['./panoptic_eval.py']
data_root = 'data/ADEChallengeData2016/'
val_dataloader = dict(dataset=dict(
    data_root=data_root,
    ann_file='ade20k_panoptic_val.json',
    data_prefix=dict(img='images/validation/', seg='ade20k_panoptic_val/'),
    vocabulary='ade20k_150'))
test_dataloader = val_dataloader
