# SEEM toy fine-tuning, strategy "frozen-backbone-full-decoder" plus SEEM's spatial (interactive) training:
# seem_tiny_toy-frozen-backbone-full-decoder.py with the visual-prompt loop on (prompts from up to 10 GT masks,
# 0..5 simulated click rounds, SEEMSpatialLoss) and the decoder's spatial parameters trainable. Validation adds
# SEEM's interactive scores (NoC@50/80/85/90, mIoU@1) with 5 clicks per object (SEEM evaluates 20).
#   python tools/train.py configs/seem_ft/seem_tiny_toy-frozen-backbone-full-decoder-spatial.py
# Measured numbers: docs/seem_ft.md ("Spatial (interactive) training").
_base_ = ['./_base_/seem_tiny_toy_model.py', './_base_/toy_seem_data.py', './_base_/toy_finetune.py',
          './_base_/strategy_frozen-backbone-full-decoder-spatial.py']
num_points = 1024
model = dict(
    spatial_training=dict(max_candidate=10, min_iter=0, max_iter=5),
    criterion=dict(losses=[
        dict(type='ClassCELoss', loss_weight=2.0, eos_coef=0.1),
        dict(type='MaskBCELoss', loss_weight=5.0),
        dict(type='MaskDiceLoss', loss_weight=5.0),
        dict(type='SEEMGroundingLoss', ce_weight=0.4, bce_weight=1.0, dice_weight=1.0, match_points=num_points,
             num_points=num_points),
        dict(type='SEEMSpatialLoss', ce_weight=0.4, bce_weight=1.0, dice_weight=1.0, match_points=num_points,
             num_points=num_points)]),
    test_cfg=dict(interactive_clicks=5))
val_evaluator = [dict(type='PanopticMetric'), dict(type='SemSegMetric'), dict(type='InteractiveNoCMetric')]
# SEEM's FIND_UNUSED_PARAMETERS True: a step with 0 click rounds leaves the spatial memories out of the graph (DDP).
find_unused_parameters = True
