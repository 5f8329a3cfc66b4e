# Toy knowledge distillation: configuration 6 + KL to the frozen zero-shot teacher on all queries' class logits.
_base_ = ['./_base_/inout_fcclip-tiny_toy.py']
train_dataloader = dict(dataset=dict(label_config=6))
model = dict(type='DistillFCCLIP', teacher_checkpoint={{_base_.zero_shot_checkpoint}},
             distill=dict(kind='kl', loss_weight=1.0, temperature=1.0, queries='all'))
