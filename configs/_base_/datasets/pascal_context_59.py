# PASCAL Context 59 val, FC-CLIP `openvocab_pascal_ctx59_sem_seg_val` (labels 0..58, 255 ignore).
_base_ = ['./sem_seg_eval.py']
data_root = 'data/pascal_ctx_d2/'
val_dataloader = dict(dataset=dict(
    data_root=data_root,
    data_prefix=dict(img='images/validation/', seg='annotations_ctx59/validation/'),
    vocabulary='pascal_context_59',
    palette_from='pascal_context_59'))
test_dataloader = val_dataloader
