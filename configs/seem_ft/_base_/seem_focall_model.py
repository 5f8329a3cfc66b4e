# SEEM v1 Focal-L (seem_focall_v1.pt), from SEEM v1.0 configs/seem/focall_unicl_lang_v1.yaml (branch v1.0 @ 7b2e76d):
# the same pixel decoder, SEEM decoder, language encoder, losses and test settings as Focal-T
# (seem_focalt_model.py: every value there is the same in both yamls); only the backbone differs.
_base_ = ['./seem_focalt_model.py']

model = dict(
    # MODEL.BACKBONE: NAME focal, EMBED_DIM 192, DEPTHS [2,2,18,2], FOCAL_LEVELS [4,4,4,4], FOCAL_WINDOWS [3,3,3,3],
    # DROP_PATH_RATE 0.3, conv embed, post-LN, layerscale, scaling modulator (FOCALNET_PRESETS['focall'])
    backbone=dict(type='FocalNet', preset='focall'))
