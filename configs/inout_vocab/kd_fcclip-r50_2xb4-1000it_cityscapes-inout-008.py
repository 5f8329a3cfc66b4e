# Knowledge distillation: fine-tune on configuration 008 + λ·MSE(student, teacher) on the class logits of all
# queries (the study's); teacher = the frozen zero-shot model, loaded from its own checkpoint (distillation.py).
# Published (R50): not reported in the study.
_base_ = ['./_base_/inout_fcclip_r50.py']
train_dataloader = dict(dataset=dict(ann_file='gtFine/inout/cityscapes_panoptic_train_008.json'))
model = dict(type='DistillFCCLIP', teacher_checkpoint={{_base_.zero_shot_checkpoint}},
             distill=dict(kind='mse', loss_weight=1.0, queries='all'))  # the study's MSE on pred_logits
