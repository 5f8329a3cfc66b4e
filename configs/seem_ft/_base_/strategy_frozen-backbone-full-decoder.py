# Strategy "frozen backbone, full decoder": SEEM's own default (SOLVER.FIX_PARAM backbone / lang_encoder /
# pixel_decoder True: only sem_seg_head.predictor minus lang_encoder trains). The decoder's spatial-only parameters
# (mask_sptial_embed, spatial_embed, spatial_featured, pn_indicator) stay frozen: they get no gradient without
# SEEM's spatial (interactive) training, which the *-spatial configs switch on (they also unfreeze them).
peft = None
trainable_params = dict(
    train=[r'^transformer_decoder\.'],
    freeze=[r'^transformer_decoder\.(mask_sptial_embed|spatial_embed|spatial_featured|pn_indicator)\.'])
