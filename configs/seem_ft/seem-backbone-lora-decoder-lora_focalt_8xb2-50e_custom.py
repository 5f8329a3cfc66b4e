# SEEM v1 Focal-T fine-tuned on your own data (tools/dataset_converters/colour_masks_to_seem.py layout under
# data/custom_seem/), strategy "backbone-lora-decoder-lora"
# (_base_/strategy_backbone-lora-decoder-lora.py), SEEM's recipe
# (_base_/seem_custom_recipe.py: 8 GPUs x 2 = batch 16, 50 epochs, AdamW 1e-4, LSJ 1024). Weights: the official
# seem_focalt_v1.pt converted by tools/model_converters/seem_to_ovseg.py (docs/seem_ft.md).
#   bash tools/dist_train.sh configs/seem_ft/seem-backbone-lora-decoder-lora_focalt_8xb2-50e_custom.py 8
_base_ = ['./_base_/seem_focalt_model.py', './_base_/strategy_backbone-lora-decoder-lora.py',
          './_base_/seem_custom_recipe.py']
load_from = 'checkpoints/seem_focalt_v1_ovseg.pth'
panoptic_on = True  # MODEL.DECODER.TEST.PANOPTIC_ON: PQ
instance_on = False  # MODEL.DECODER.TEST.INSTANCE_ON (the seed's False): mask AP against the panoptic GT's things
num_classes = None  # MODEL.ENCODER.NUM_CLASSES: optional, checked against the data (the classes come from it)
model = dict(num_classes=num_classes, test_cfg=dict(panoptic_on=panoptic_on, instance_on=instance_on))
# The evaluators and the best checkpoint follow the two switches above; a child config or --cfg-options that flips
# a switch must set val_evaluator too (an evaluator without its predictions stops with the switch's name).
val_evaluator = ([dict(type='PanopticMetric')] if panoptic_on else []) + [dict(type='SemSegMetric')] + (
    [dict(type='InstanceMaskAPMetric')] if instance_on else [])
default_hooks = dict(checkpoint=dict(save_best='panoptic/PQ' if panoptic_on else 'sem_seg/mIoU'))
