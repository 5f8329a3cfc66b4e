# DreamMask on FC-CLIP ConvNeXt-L, evaluated on COCO panoptic val (the training domain: PQ, AP, mIoU).
# Dataset, test size, tasks and metrics: FC-CLIP's eval config for the dataset; seen classes: COCO's (see _base_).
_base_ = ['../fcclip/fcclip_convnext-large_eval_coco-panoptic.py', './_base_/dreammask_eval.py']
model = dict(type='DreamMaskFCCLIP', sra=_base_.sra)
