# FC-CLIP with the ConvNeXt-Large CLIP (the headline model). Sources: the official FC-CLIP code (fcclip/fcclip.py,
# fcclip/config.py, the CLIP backbone, pixel decoder and transformer decoder modules) and yamls
# fcclip_convnext_large_eval_ade20k.yaml <- maskformer2_R50_bs16_50ep.yaml <- Base-COCO-PanopticSegmentation.yaml.
embed_dim = 768    # MODEL.FC_CLIP.EMBED_DIM 768 (convnext_large_d_320 text_projection width)
hidden_dim = 256   # MASK_FORMER.HIDDEN_DIM 256 = SEM_SEG_HEAD.CONVS_DIM = MASK_DIM 256
num_queries = 250  # MASK_FORMER.NUM_OBJECT_QUERIES 250 (eval yaml; base yaml has 100)
dec_layers = 9     # MASK_FORMER.DEC_LAYERS 10 -> 9 decoder layers (+1 prediction from the learnable queries)

model = dict(
    type='FCCLIP',
    data_preprocessor=dict(
        type='SegDataPreprocessor',
        mean=[122.7709383, 116.7460125, 104.09373615],  # MODEL.PIXEL_MEAN (CLIP, RGB 0-255)
        std=[68.5005327, 66.6321579, 70.32316305],      # MODEL.PIXEL_STD (CLIP)
        size_divisor=32,                                 # MASK_FORMER.SIZE_DIVISIBILITY 32
        pad_value=0.0,
        seg_pad_value=255),                              # SEM_SEG_HEAD.IGNORE_VALUE 255
    backbone=dict(
        type='CLIPBackbone',
        model_name='convnext_large_d_320',               # FC_CLIP.CLIP_MODEL_NAME
        pretrained='laion2b_s29b_b131k_ft_soup'),        # FC_CLIP.CLIP_PRETRAINED_WEIGHTS (local cache only)
    # the CLIP text tower turns class names into the classifier: 14 ViLD templates, chunks of 128 (fcclip.py)
    text_encoder=dict(type='CLIPTextEncoder', chunk_size=128),
    pixel_decoder=dict(
        type='MSDeformAttnPixelDecoder',
        # input_shape (res2..res5 channels/strides) is filled in from the backbone by FCCLIP
        conv_dim=hidden_dim,                             # SEM_SEG_HEAD.CONVS_DIM 256
        mask_dim=hidden_dim,                             # SEM_SEG_HEAD.MASK_DIM 256
        norm='GN',                                       # SEM_SEG_HEAD.NORM "GN" (GroupNorm(32, 256))
        transformer_in_features=['res3', 'res4', 'res5'],  # DEFORMABLE_TRANSFORMER_ENCODER_IN_FEATURES
        transformer_enc_layers=6,                        # SEM_SEG_HEAD.TRANSFORMER_ENC_LAYERS 6
        transformer_nheads=8,                            # MASK_FORMER.NHEADS 8
        transformer_dim_feedforward=1024,                # hard-coded 1024 in msdeformattn.py from_config
        transformer_dropout=0.0,                         # MASK_FORMER.DROPOUT 0.0
        num_points=4,                                    # DEFORMABLE_TRANSFORMER_ENCODER_N_POINTS 4
        common_stride=4),                                # SEM_SEG_HEAD.COMMON_STRIDE 4
    transformer_decoder=dict(
        type='MaskedAttentionDecoder',                   # Mask2Former's decoder, FC-CLIP's class head
        in_channels=hidden_dim,                          # pixel decoder conv_dim
        hidden_dim=hidden_dim,                           # MASK_FORMER.HIDDEN_DIM 256
        num_queries=num_queries,                         # 250
        nheads=8,                                        # MASK_FORMER.NHEADS 8
        dim_feedforward=2048,                            # MASK_FORMER.DIM_FEEDFORWARD 2048
        dec_layers=dec_layers,                           # 9 (DEC_LAYERS 10 - 1)
        pre_norm=False,                                  # MASK_FORMER.PRE_NORM False
        mask_dim=hidden_dim,                             # SEM_SEG_HEAD.MASK_DIM 256
        enforce_input_project=False,                     # MASK_FORMER.ENFORCE_INPUT_PROJ False
        class_head=dict(
            type='InVocabClassifier',
            hidden_dim=hidden_dim,                       # _mask_pooling_proj: LayerNorm(256) + Linear
            embed_dim=embed_dim,                         # class_embed MLP 256 -> 256 -> 256 -> 768
            num_layers=3)),                              # 3-layer MLP; logit_scale init log(1/0.07)
    criterion=dict(
        type='SetCriterion',
        matcher=dict(
            type='HungarianMatcher',
            cost_class=2.0,                              # CLASS_WEIGHT 2.0 (matcher uses the loss weights)
            cost_mask=5.0,                               # MASK_WEIGHT 5.0
            cost_dice=5.0,                               # DICE_WEIGHT 5.0
            num_points=12544),                           # TRAIN_NUM_POINTS 12544 (112^2)
        losses=[
            dict(type='ClassCELoss', loss_weight=2.0,    # CLASS_WEIGHT 2.0
                 eos_coef=0.1),                          # NO_OBJECT_WEIGHT 0.1 (void column of CE)
            dict(type='MaskBCELoss', loss_weight=5.0),   # MASK_WEIGHT 5.0
            dict(type='MaskDiceLoss', loss_weight=5.0)],  # DICE_WEIGHT 5.0
        deep_supervision=True,                           # DEEP_SUPERVISION True (aux loss on all 9 layers)
        num_points=12544,                                # TRAIN_NUM_POINTS 12544
        oversample_ratio=3.0,                            # OVERSAMPLE_RATIO 3.0
        importance_sample_ratio=0.75),                   # IMPORTANCE_SAMPLE_RATIO 0.75
    test_cfg=dict(
        panoptic_on=True, semantic_on=True, instance_on=True,  # MASK_FORMER.TEST.*_ON (eval_ade20k.yaml)
        object_mask_threshold=0.0,                       # TEST.OBJECT_MASK_THRESHOLD 0.0 (eval yaml)
        overlap_threshold=0.8,                           # TEST.OVERLAP_THRESHOLD 0.8
        geometric_ensemble_alpha=0.4,                    # FC_CLIP.GEOMETRIC_ENSEMBLE_ALPHA 0.4 (seen)
        geometric_ensemble_beta=0.8,                     # FC_CLIP.GEOMETRIC_ENSEMBLE_BETA 0.8 (unseen)
        ensemble_on_valid_mask=False,                    # FC_CLIP.ENSEMBLE_ON_VALID_MASK (False for ConvNeXt)
        test_topk_per_image=100),                        # TEST.DETECTIONS_PER_IMAGE (detectron2 default 100)
)
