# Knowledge distillation: fine-tune on configuration 008 + λ·KL(teacher ‖ student) on the class logits of all
# queries, teacher = the frozen zero-shot model loaded from its own checkpoint (inout_vocab/distillation.py).
# Published (R50): not reported in the study.
_base_ = ['./_base_/inout_fcclip_r50.py']
train_dataloader = dict(dataset=dict(ann_file='gtFine/inout/cityscapes_panoptic_train_008.json'))
model = dict(type='DistillFCCLIP', teacher_checkpoint={{_base_.zero_shot_checkpoint}},
             distill=dict(kind='kl', loss_weight=1.0, temperature=1.0, queries='all'))
