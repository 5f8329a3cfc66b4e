# SEEM v1 Focal-T fine-tuned on your own data (tools/dataset_converters/colour_masks_to_seem.py layout under
# data/custom_seem/), strategy "frozen-backbone-full-decoder"
# (_base_/strategy_frozen-backbone-full-decoder.py), SEEM's recipe
# (_base_/seem_custom_recipe.py: 8 GPUs x 2 = batch 16, 50 epochs, AdamW 1e-4, LSJ 1024). Weights: the official
# seem_focalt_v1.pt converted by tools/model_converters/seem_to_ovseg.py (docs/seem_ft.md).
#   bash tools/dist_train.sh configs/seem_ft/seem-frozen-backbone-full-decoder_focalt_8xb2-50e_custom.py 8
_base_ = ['./_base_/seem_focalt_model.py', './_base_/strategy_frozen-backbone-full-decoder.py',
          './_base_/seem_custom_recipe.py']
load_from = 'checkpoints/seem_focalt_v1_ovseg.pth'
# the recipe's switches: PANOPTIC_ON / INSTANCE_ON and NUM_CLASSES (_base_/seem_custom_recipe.py)
model = dict(num_classes={{_base_.num_classes}},
             test_cfg=dict(panoptic_on={{_base_.panoptic_on}}, instance_on={{_base_.instance_on}}))
