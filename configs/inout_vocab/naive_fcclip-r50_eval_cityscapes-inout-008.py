# Naive merge (test only): in-vocabulary segments from the lower-bound model (fine-tuned on 008), the deleted
# classes' segments from the zero-shot model pasted where the former has none (inout_vocab/naive_merge.py).
# Published (R50, seed 003 results table, PQ all / in / out): 50.35 / 65.575 / 29.416.
# python tools/test.py THIS_CONFIG   (both checkpoints are named below)
_base_ = ['./_base_/inout_fcclip_r50.py']
model = dict(
    _delete_=True,
    type='NaiveMergeSegmentor',
    data_preprocessor={{_base_.model.data_preprocessor}},
    member={{_base_.model}},  # the architecture of both
    finetuned=dict(checkpoint='work_dirs/lower-bound_fcclip-r50_2xb4-1000it_cityscapes-inout-008/iter_1000.pth'),
    zero_shot=dict(checkpoint={{_base_.zero_shot_checkpoint}}),
    zero_shot_train_vocabulary='coco_panoptic',  # what the released model was trained on
    out_vocab_classes=['person', 'rider', 'car', 'truck', 'bus', 'train', 'motorcycle', 'bicycle'])  # deleted by 008
load_from = None
