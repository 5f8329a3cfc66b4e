# Tiny random SEEM v1 for tests and the demo smoke run: the Focal-T architecture (focal_dw) shrunk on every axis.
# Architecture and names follow configs/seem_ft/_base_/seem_focalt_model.py; only the sizes differ.
custom_imports = dict(imports=['projects.seem_ft.seem_ft'], allow_failed_imports=False)
hidden_dim = 32  # SEEM HIDDEN_DIM / CONVS_DIM / MASK_DIM / DIM_PROJ are all 512; GroupNorm(32) needs a multiple of 32

model = dict(
    type='SEEM',
    data_preprocessor=dict(type='SegDataPreprocessor', mean=[123.675, 116.28, 103.53],  # SEEM INPUT.PIXEL_MEAN
                           std=[58.395, 57.12, 57.375], size_divisor=32),  # PIXEL_STD, SIZE_DIVISIBILITY 32
    backbone=dict(type='FocalNet', preset='focalt', embed_dim=8, depths=(1, 1, 1, 1), drop_path_rate=0.0),
    pixel_decoder=dict(type='TransformerEncoderPixelDecoder', conv_dim=hidden_dim, mask_dim=hidden_dim, norm='GN',
                       transformer_enc_layers=1, transformer_nheads=2, transformer_dim_feedforward=64),
    transformer_decoder=dict(type='SEEMDecoder', hidden_dim=hidden_dim, num_queries=8, nheads=2,
                             dim_feedforward=64, dec_layers=3, spatial=True, num_spatial_memories=4,
                             query_number=3, max_spatial_len=(64, 64, 64, 64)),
    text_encoder=dict(type='SEEMLanguageEncoder', width=16, layers=1, heads=2, dim_proj=hidden_dim, frozen=True,
                      templates=('{}.', 'a photo of a {}.')),
    criterion=dict(
        type='SetCriterion',
        matcher=dict(type='HungarianMatcher', cost_class=2.0, cost_mask=5.0, cost_dice=5.0, num_points=256),
        losses=[dict(type='ClassCELoss', loss_weight=2.0, eos_coef=0.1),
                dict(type='MaskBCELoss', loss_weight=5.0),
                dict(type='MaskDiceLoss', loss_weight=5.0),
                dict(type='SEEMGroundingLoss', ce_weight=0.4, bce_weight=1.0, dice_weight=1.0, match_points=256,
                     num_points=256)],
        deep_supervision=True, num_points=256, oversample_ratio=3.0, importance_sample_ratio=0.75),
    test_cfg=dict(panoptic_on=True, semantic_on=True, instance_on=False),
)
