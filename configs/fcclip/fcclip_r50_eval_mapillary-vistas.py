# FC-CLIP (fcclip_r50) on Mapillary Vistas val (PQ, mIoU; 1024/2560); trained on COCO only.
# Tasks / test size as the official fcclip_convnext_large_eval_mapillary_vistas.yaml;
# RN50 model part from ..._ade20k_r50.yaml.
_base_ = [
    '../_base_/models/fcclip_r50.py',
    '../_base_/datasets/mapillary_panoptic.py',
    '../_base_/default_runtime.py',
]
# Seen/unseen classes for the geometric ensemble are decided against the training vocabulary (COCO).
train_vocabulary = 'coco_panoptic'
custom_hooks = [dict(type='VocabularyHook')]
model = dict(test_cfg=dict(panoptic_on=True, semantic_on=True, instance_on=False))
