# Strategy "frozen backbone, full decoder" with SEEM's spatial (interactive) training on: SEEM's own default
# (SOLVER.FIX_PARAM backbone / lang_encoder / pixel_decoder True) where the whole decoder trains, its spatial-only
# parameters (mask_sptial_embed, spatial_embed, spatial_featured, pn_indicator) included: SEEMSpatialLoss gives them
# a gradient. The leaves that use it switch the spatial loop on (model.spatial_training + the loss term).
peft = None
trainable_params = dict(train=[r'^transformer_decoder\.'], freeze=[])
