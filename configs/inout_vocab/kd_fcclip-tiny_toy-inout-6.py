# Toy knowledge distillation: configuration 6 + MSE to the frozen zero-shot teacher's class logits (all queries).
_base_ = ['./_base_/inout_fcclip-tiny_toy.py']
train_dataloader = dict(dataset=dict(label_config=6))
model = dict(type='DistillFCCLIP', teacher_checkpoint={{_base_.zero_shot_checkpoint}},
             distill=dict(kind='mse', loss_weight=1.0, queries='all'))  # the study's MSE on pred_logits
