# SEEM v1 Focal-T fine-tuned on your own data with SEEM's own strategy (frozen backbone, full decoder) *and* its
# spatial (interactive) training, so that point / scribble / mask prompts follow your data too:
# seem-frozen-backbone-full-decoder_focalt_8xb2-50e_custom.py + SPATIAL.ENABLED True (seem_model_v1.py forward_seg):
# visual prompts from up to 10 GT masks per image (STROKE_SAMPLER.MAX_CANDIDATE 10 in SEEM's training command),
# 0..5 simulated click rounds (SPATIAL.MAX_ITER 5), spatial CE 0.4 / BCE 1 / dice 1 (SCLASS / SMASK / SDICE_WEIGHT),
# matcher COST_SPATIAL 5 / 2 / 2. The decoder's spatial-only parameters train (they stay frozen without it).
# Validation adds SEEM's interactive scores (NoC@50/80/85/90, mIoU@1; STROKE_SAMPLER.EVAL.MAX_ITER 20 clicks).
#   bash tools/dist_train.sh configs/seem_ft/seem-frozen-backbone-full-decoder-spatial_focalt_8xb2-50e_custom.py 8
_base_ = ['./_base_/seem_focalt_model.py', './_base_/strategy_frozen-backbone-full-decoder-spatial.py',
          './_base_/seem_custom_recipe.py']
load_from = 'checkpoints/seem_focalt_v1_ovseg.pth'
model = dict(
    num_classes={{_base_.num_classes}},  # the recipe's switches (_base_/seem_custom_recipe.py)
    spatial_training=dict(max_candidate=10, min_iter=0, max_iter=5, num_points=20, dilation=3, keep_iou=0.925),
    criterion=dict(losses=[
        dict(type='ClassCELoss', loss_weight=2.0, eos_coef=0.1),
        dict(type='MaskBCELoss', loss_weight=5.0),
        dict(type='MaskDiceLoss', loss_weight=5.0),
        dict(type='SEEMGroundingLoss', ce_weight=0.4, bce_weight=1.0, dice_weight=1.0, text_weight=2.0,
             class_weight=0.5, cost_class=2.0, cost_mask=5.0, cost_dice=5.0, match_points=12544,
             num_points=12544, oversample_ratio=3.0, importance_sample_ratio=0.75),
        dict(type='SEEMSpatialLoss', ce_weight=0.4, bce_weight=1.0, dice_weight=1.0, cost_class=5.0, cost_mask=2.0,
             cost_dice=2.0, match_points=12544, num_points=12544, oversample_ratio=3.0,
             importance_sample_ratio=0.75)]),
    test_cfg=dict(panoptic_on={{_base_.panoptic_on}}, instance_on={{_base_.instance_on}}, interactive_clicks=20,
                  interactive_stop_iou=0.9))
# the recipe's evaluators for its default switches (PQ, mIoU) + SEEM's interactive scores
val_evaluator = [dict(type='PanopticMetric'), dict(type='SemSegMetric'), dict(type='InteractiveNoCMetric')]
# SEEM's FIND_UNUSED_PARAMETERS True: a step with 0 click rounds leaves the spatial memories out of the graph (DDP).
find_unused_parameters = True
