# PASCAL VOC 2012 val without background (20 classes; background = 255),
# FC-CLIP `openvocab_pascal20_sem_seg_val`.
_base_ = ['./sem_seg_eval.py']
data_root = 'data/pascal_voc_d2/'
val_dataloader = dict(dataset=dict(
    data_root=data_root,
    data_prefix=dict(img='images/validation/', seg='annotations_pascal20/validation/'),
    vocabulary='pascal_voc_20'))
test_dataloader = val_dataloader
