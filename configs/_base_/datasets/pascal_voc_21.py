# PASCAL VOC 2012 val with background (21 classes), FC-CLIP `openvocab_pascal21_sem_seg_val`.
_base_ = ['./sem_seg_eval.py']
data_root = 'data/pascal_voc_d2/'
val_dataloader = dict(dataset=dict(
    data_root=data_root,
    data_prefix=dict(img='images/validation/', seg='annotations_pascal21/validation/'),
    vocabulary='pascal_voc_21',
    palette_from='pascal_voc_21'))
test_dataloader = val_dataloader
