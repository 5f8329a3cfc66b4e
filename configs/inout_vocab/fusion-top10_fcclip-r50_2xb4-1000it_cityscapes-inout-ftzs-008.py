# Two-model training: model one from the zero-shot checkpoint, model two the lower-bound model (fine-tuned
# on 008), trained together on the FTZS data with L1 + L2 + L_comb; fused prediction = sum of the two top-10 softmaxes.
# (Our reading of the study's "n°6 + n°9" rows; inout_vocab/two_model_fusion.py.)
# Published (R50, seed 003 results table, PQ all / in / out): 57.932 / 63.929 / 49.688.
_base_ = ['./_base_/inout_fcclip_r50.py']
train_dataloader = dict(dataset=dict(ann_file='gtFine/inout/cityscapes_panoptic_train_ftzs_008.json'))
model = dict(
    _delete_=True,
    type='TwoModelFusionSegmentor',
    data_preprocessor={{_base_.model.data_preprocessor}},
    member={{_base_.model}},  # the architecture of both
    model_one=dict(checkpoint={{_base_.zero_shot_checkpoint}}),
    model_two=dict(checkpoint='work_dirs/lower-bound_fcclip-r50_2xb4-1000it_cityscapes-inout-008/iter_1000.pth'),
    fusion=dict(type='softmax_topk', k=10),
    predict_with='fused')
load_from = None  # each member loads its own checkpoint
