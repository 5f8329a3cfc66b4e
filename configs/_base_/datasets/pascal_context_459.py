# PASCAL Context 459 val, FC-CLIP `openvocab_pascal_ctx459_sem_seg_val` (16-bit TIFF labels 0..458).
_base_ = ['./sem_seg_eval.py']
data_root = 'data/pascal_ctx_d2/'
val_dataloader = dict(dataset=dict(
    data_root=data_root,
    data_prefix=dict(img='images/validation/', seg='annotations_ctx459/validation/'),
    seg_map_suffix='.tif',
    vocabulary='pascal_context_459',
    # 16-bit labels: 255 is a class, 65535 = unlabelled
    # (ignore_label=65535 in FC-CLIP's register_pascal_ctx_459_sem_seg.py)
    ignore_index=65535))
test_dataloader = val_dataloader
