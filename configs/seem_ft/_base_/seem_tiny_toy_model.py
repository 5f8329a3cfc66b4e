# The tiny SEEM of the CPU toys (seem_tiny_toy-*.py): seem_tiny_model.py (Focal-T architecture, focal_dw) a little
# wider so that it learns ToyScenes in minutes on 2 CPU cores: FocalNet embed 16, hidden / mask / projection 64,
# 16 queries (a ToyScenes image has up to 9 segments), 3 decoder layers; 1024 sampled points = the whole 32x32
# stride-4 mask of a 128x128 image (SEEM: 12544 points at 1024x1024).
_base_ = ['./seem_tiny_model.py']
hidden_dim = 64
num_points = 1024
model = dict(
    backbone=dict(embed_dim=16),
    pixel_decoder=dict(conv_dim=hidden_dim, mask_dim=hidden_dim, transformer_nheads=4,
                       transformer_dim_feedforward=128),
    transformer_decoder=dict(hidden_dim=hidden_dim, num_queries=16, nheads=4, dim_feedforward=128, dec_layers=3),
    text_encoder=dict(width=32, heads=2, dim_proj=hidden_dim),
    criterion=dict(
        matcher=dict(num_points=num_points),
        losses=[dict(type='ClassCELoss', loss_weight=2.0, eos_coef=0.1),
                dict(type='MaskBCELoss', loss_weight=5.0),
                dict(type='MaskDiceLoss', loss_weight=5.0),
                dict(type='SEEMGroundingLoss', ce_weight=0.4, bce_weight=1.0, dice_weight=1.0,
                     match_points=num_points, num_points=num_points)],
        num_points=num_points),
    test_cfg=dict(panoptic_on=True, semantic_on=True, instance_on=False),
)
