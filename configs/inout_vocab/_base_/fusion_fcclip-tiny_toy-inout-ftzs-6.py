# Toy two-model training: the zero-shot model + the lower-bound model trained together on the FTZS data
# (L1 + L2 + L_comb). Leaves choose the fusion; default: entropy.
_base_ = ['./inout_fcclip-tiny_toy.py']
ftzs_json = 'inout/panoptic_train_ftzs_006.json'  # under the toy data root, written by the FTZS tool
train_dataloader = dict(dataset=dict(label_config=6, ann_file=ftzs_json))
model = dict(
    _delete_=True,
    type='TwoModelFusionSegmentor',
    data_preprocessor={{_base_.model.data_preprocessor}},
    member={{_base_.model}},
    model_one=dict(checkpoint={{_base_.zero_shot_checkpoint}}),
    model_two=dict(checkpoint='work_dirs/inout_vocab_toy/lower-bound/iter_200.pth'),
    fusion=dict(type='entropy', normalize_entropy=True),
    predict_with='fused')
load_from = None
