# DreamMask on FC-CLIP ConvNeXt-L, evaluated on ADE20K-150 (DreamMask Table 1 mIoU; PQ and mask AP as FC-CLIP
# reports them).
# Dataset, test size, tasks and metrics: FC-CLIP's eval config for the dataset; seen classes: COCO's (see _base_).
_base_ = ['../fcclip/fcclip_convnext-large_eval_ade20k-150.py', './_base_/dreammask_eval.py']
model = dict(type='DreamMaskFCCLIP', sra=_base_.sra)
