# ADE20K-full val, FC-CLIP `openvocab_ade20k_full_sem_seg_val` (16-bit TIFF labels 0..846).
_base_ = ['./sem_seg_eval.py']
data_root = 'data/ADE20K_2021_17_01/'
val_dataloader = dict(dataset=dict(
    data_root=data_root,
    data_prefix=dict(img='images_detectron2/validation/', seg='annotations_detectron2/validation/'),
    seg_map_suffix='.tif',
    vocabulary='ade20k_847',
    # 16-bit labels: 255 is a class, 65535 = unlabelled
    # (ignore_label=65535 in FC-CLIP's register_ade20k_full.py)
    ignore_index=65535))
test_dataloader = val_dataloader
