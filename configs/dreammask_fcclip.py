# DreamMask on FC-CLIP ConvNeXt-L: the headline recipe, COCO panoptic + NSS synthetic scenes with the synthetic-real
# alignment loss (defined in configs/dreammask/dreammask_fcclip-convnext-large_8xb2-368750it_coco-panoptic-nss.py).
# Launch (8 GPUs):   bash tools/dist_train.sh configs/dreammask_fcclip.py 8
_base_ = ['./dreammask/dreammask_fcclip-convnext-large_8xb2-368750it_coco-panoptic-nss.py']
