# FC-CLIP (fcclip_convnext_large) on A-847 semantic val (mIoU); trained on COCO panoptic only.
# Tasks / test size as the official fcclip_convnext_large_eval_a847.yaml.
_base_ = [
    '../_base_/models/fcclip_convnext_large.py',
    '../_base_/datasets/ade20k_847.py',
    '../_base_/default_runtime.py',
]
# Seen/unseen classes for the geometric ensemble are decided against the training vocabulary (COCO).
train_vocabulary = 'coco_panoptic'
custom_hooks = [dict(type='VocabularyHook')]
model = dict(test_cfg=dict(panoptic_on=False, semantic_on=True, instance_on=False))
