# ADE20K-150 panoptic val (FC-CLIP `openvocab_ade20k_panoptic_val`: PQ, mAP, mIoU; test size 800/1333).
# Dataset and metrics come from ade20k_panoptic_val.py: PQ on the converted panoptic PNGs/JSON, mIoU on the
# SceneParsing labels (annotations_detectron2), mask AP on the panoptic thing segments.
_base_ = ['./panoptic_eval.py', './ade20k_panoptic_val.py']
data_root = 'data/ADEChallengeData2016/'
val_dataloader = dict(dataset={{_base_.ade20k_val_dataset}})
test_dataloader = val_dataloader
val_evaluator = {{_base_.ade20k_val_evaluator}}
test_evaluator = val_evaluator
