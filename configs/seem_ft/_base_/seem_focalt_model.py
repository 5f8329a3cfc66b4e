# SEEM v1 Focal-T (seem_focalt_v1.pt), from SEEM v1.0 configs/seem/focalt_unicl_lang_v1.yaml (branch v1.0 @ 7b2e76d).
custom_imports = dict(imports=['projects.seem_ft.seem_ft'], allow_failed_imports=False)
# MODEL.DECODER.HIDDEN_DIM = ENCODER.CONVS_DIM = ENCODER.MASK_DIM = DIM_PROJ = 512; must match the checkpoint.
hidden_dim = 512

model = dict(
    type='SEEM',
    num_classes=None,  # optional: the training data's class count is checked against it (classes come from data)
    data_preprocessor=dict(type='SegDataPreprocessor',
                           mean=[123.675, 116.28, 103.53],  # INPUT.PIXEL_MEAN
                           std=[58.395, 57.12, 57.375],  # INPUT.PIXEL_STD
                           size_divisor=32),  # MODEL.DECODER.SIZE_DIVISIBILITY
    # MODEL.BACKBONE: NAME focal_dw, EMBED_DIM 96, DEPTHS [2,2,6,2], FOCAL_LEVELS [3,3,3,3], FOCAL_WINDOWS [3,3,3,3],
    # DROP_PATH_RATE 0.3, conv embed, post-LN, layerscale, scaling modulator (FOCALNET_PRESETS['focalt'])
    backbone=dict(type='FocalNet', preset='focalt'),
    # MODEL.ENCODER: transformer_encoder_fpn, CONVS_DIM 512, MASK_DIM 512, NORM GN, TRANSFORMER_ENC_LAYERS 6
    # (nheads 8, dim_feedforward 2048, dropout 0.0, pre_norm False: transformer_encoder_fpn.py from_config)
    pixel_decoder=dict(type='TransformerEncoderPixelDecoder', conv_dim=hidden_dim, mask_dim=hidden_dim, norm='GN',
                       transformer_enc_layers=6, transformer_nheads=8, transformer_dim_feedforward=2048,
                       transformer_dropout=0.0, transformer_pre_norm=False),
    # MODEL.DECODER: seem_v1, HIDDEN_DIM 512, NUM_OBJECT_QUERIES 101, NHEADS 8, DIM_FEEDFORWARD 2048,
    # DEC_LAYERS 10 (9 layers), PRE_NORM False, ENFORCE_INPUT_PROJ False, MAX_SPATIAL_LEN [512]*4,
    # ATTENTION_ARCH SPATIAL_MEMORIES 32 / QUERY_NUMBER 3, SPATIAL.ENABLED True; dim_proj = MODEL.DIM_PROJ 512
    transformer_decoder=dict(type='SEEMDecoder', hidden_dim=hidden_dim, dim_proj=hidden_dim, num_queries=101,
                             nheads=8, dim_feedforward=2048, dec_layers=9, pre_norm=False, enforce_input_project=False,
                             spatial=True, num_spatial_memories=32, query_number=3,
                             max_spatial_len=(512, 512, 512, 512)),
    # MODEL.TEXT: CONTEXT_LENGTH 77, WIDTH 512, HEADS 8, LAYERS 12, AUTOGRESSIVE True; DIM_PROJ 512;
    # SOLVER.FIX_PARAM.lang_encoder True (frozen)
    text_encoder=dict(type='SEEMLanguageEncoder', width=512, layers=12, heads=8, context_length=77,
                      vocab_size=49408, dim_proj=hidden_dim, frozen=True),
    # MODEL.DECODER loss weights: CLASS 2 / MASK 5 / DICE 5, NO_OBJECT_WEIGHT 0.1, TRAIN_NUM_POINTS 12544,
    # OVERSAMPLE_RATIO 3.0, IMPORTANCE_SAMPLE_RATIO 0.75, DEEP_SUPERVISION True; GCLASS 0.4 / GMASK 1 / GDICE 1,
    # GROUNDING.TEXT_WEIGHT 2.0 / CLASS_WEIGHT 0.5 (seem_model_v1.py from_config)
    criterion=dict(
        type='SetCriterion',
        matcher=dict(type='HungarianMatcher', cost_class=2.0, cost_mask=5.0, cost_dice=5.0, num_points=12544),
        losses=[dict(type='ClassCELoss', loss_weight=2.0, eos_coef=0.1),
                dict(type='MaskBCELoss', loss_weight=5.0),
                dict(type='MaskDiceLoss', loss_weight=5.0),
                dict(type='SEEMGroundingLoss', ce_weight=0.4, bce_weight=1.0, dice_weight=1.0, text_weight=2.0,
                     class_weight=0.5, cost_class=2.0, cost_mask=5.0, cost_dice=5.0, match_points=12544,
                     num_points=12544, oversample_ratio=3.0, importance_sample_ratio=0.75)],
        deep_supervision=True, num_points=12544, oversample_ratio=3.0, importance_sample_ratio=0.75),
    # MODEL.DECODER.TEST: SEMANTIC_ON / INSTANCE_ON / PANOPTIC_ON True, OVERLAP_THRESHOLD 0.8,
    # OBJECT_MASK_THRESHOLD 0.8; TEST.DETECTIONS_PER_IMAGE 100
    test_cfg=dict(panoptic_on=True, semantic_on=True, instance_on=True, object_mask_threshold=0.8,
                  overlap_threshold=0.8, test_topk_per_image=100),
)
