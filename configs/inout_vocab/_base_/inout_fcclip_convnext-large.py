# FC-CLIP ConvNeXt-L (released COCO panoptic checkpoint) fine-tuned on a Cityscapes label configuration,
# evaluated on the full Cityscapes val (PQ all / stuff = in-vocabulary / things = out-of-vocabulary).
_base_ = [
    '../../_base_/models/fcclip_convnext_large.py',
    '../../_base_/datasets/cityscapes_panoptic_inout.py',
    '../../_base_/default_runtime.py',
    './finetune_1000it.py',
]
custom_imports = dict(imports=['projects.inout_vocab.inout_vocab'], allow_failed_imports=False)
# tools/model_converters/fcclip_to_ovseg.py fcclip_cocopan.pth → this file (the zero-shot model).
zero_shot_checkpoint = 'checkpoints/fcclip_convnext_large_ovseg.pth'
load_from = zero_shot_checkpoint
custom_hooks = [dict(type='VocabularyHook')]
# The study reports panoptic quality only; AP / mIoU stay available by overriding the evaluator.
val_evaluator = [dict(type='PanopticMetric')]
test_evaluator = val_evaluator
model = dict(test_cfg=dict(panoptic_on=True, semantic_on=False, instance_on=False))
default_hooks = dict(checkpoint=dict(interval=1000, max_keep_ckpts=1, save_last=True))  # one checkpoint, at the end
