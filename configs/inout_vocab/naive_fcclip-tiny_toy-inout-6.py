# Toy naive merge (test only): in-vocabulary (stuff) segments of the lower-bound model + thing segments of the
# zero-shot model where the former has none.
_base_ = ['./_base_/inout_fcclip-tiny_toy.py']
model = dict(
    _delete_=True,
    type='NaiveMergeSegmentor',
    data_preprocessor={{_base_.model.data_preprocessor}},
    member={{_base_.model}},
    finetuned=dict(checkpoint='work_dirs/inout_vocab_toy/lower-bound/iter_200.pth'),
    zero_shot=dict(checkpoint={{_base_.zero_shot_checkpoint}}),
    out_vocab_classes=['ball', 'box', 'sign', 'ring', 'star', 'cross'])  # deleted by configuration 6
load_from = None
