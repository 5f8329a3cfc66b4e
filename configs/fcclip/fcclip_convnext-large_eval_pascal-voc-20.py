# FC-CLIP (fcclip_convnext_large) on PAS-20 semantic val (mIoU); trained on COCO panoptic only.
# Tasks / test size as the official fcclip_convnext_large_eval_pas20.yaml.
_base_ = [
    '../_base_/models/fcclip_convnext_large.py',
    '../_base_/datasets/pascal_voc_20.py',
    '../_base_/default_runtime.py',
]
# Seen/unseen classes for the geometric ensemble are decided against the training vocabulary (COCO).
train_vocabulary = 'coco_panoptic'
custom_hooks = [dict(type='VocabularyHook')]
model = dict(test_cfg=dict(panoptic_on=False, semantic_on=True, instance_on=False))
