# DreamMask on FC-CLIP ConvNeXt-L, evaluated on PAS-20 (DreamMask Table 1, mIoU).
# Dataset, test size, tasks and metrics: FC-CLIP's eval config for the dataset; seen classes: COCO's (see _base_).
_base_ = ['../fcclip/fcclip_convnext-large_eval_pascal-voc-20.py', './_base_/dreammask_eval.py']
model = dict(type='DreamMaskFCCLIP', sra=_base_.sra)
