# Two-model training on FC-CLIP R50 (inout_vocab/two_model_fusion.py): model one from the zero-shot checkpoint,
# model two the lower-bound model (fine-tuned on 008), trained together on the FTZS data with L1 + L2 + L_comb
# (our reading of the study's "n°6 + n°9" rows). Leaves choose the fusion; default: entropy (the study's best).
_base_ = ['./inout_fcclip_r50.py']
train_dataloader = dict(dataset=dict(ann_file='gtFine/inout/cityscapes_panoptic_train_ftzs_008.json'))
model = dict(
    _delete_=True,
    type='TwoModelFusionSegmentor',
    data_preprocessor={{_base_.model.data_preprocessor}},
    member={{_base_.model}},  # the architecture of both
    model_one=dict(checkpoint={{_base_.zero_shot_checkpoint}}),
    model_two=dict(checkpoint='work_dirs/lower-bound_fcclip-r50_2xb4-1000it_cityscapes-inout-008/iter_1000.pth'),
    fusion=dict(type='entropy', normalize_entropy=True),
    predict_with='fused')
load_from = None  # each member loads its own checkpoint
