# COCO panoptic training (coco_panoptic.py) validated on ADE20K-150 panoptic val, FC-CLIP's checkpoint selection:
# the official run evaluates DATASETS.TEST = ("openvocab_ade20k_panoptic_val",) every TEST.EVAL_PERIOD 5000
# iterations (fcclip_convnext_large_eval_ade20k.yaml, Base-COCO-PanopticSegmentation.yaml), and the released
# model is the checkpoint with the best ADE20K PQ ("We kept the best checkpoint in terms of ADE20K PQ metric",
# maintainer, bytedance/fc-clip issue #13). The recipe leaves add save_best on PQ and keep every checkpoint.
_base_ = ['./coco_panoptic.py', './ade20k_panoptic_val.py']
val_dataloader = dict(
    _delete_=True,
    batch_size=1,  # detectron2 inference batch size 1
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset={{_base_.ade20k_val_dataset}})
test_dataloader = val_dataloader
val_evaluator = {{_base_.ade20k_val_evaluator}}  # PQ, mIoU (SceneParsing labels), panoptic-derived mask AP
test_evaluator = val_evaluator
