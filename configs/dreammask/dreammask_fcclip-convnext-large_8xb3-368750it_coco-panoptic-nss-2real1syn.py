# DreamMask on FC-CLIP ConvNeXt-L keeping FC-CLIP's real-data exposure: 2 real COCO + 1 synthetic NSS image per
# GPU (8 GPUs x 3 = 24 images per iteration, 16 of them real), 368,750 iterations, everything else as the
# headline configs/dreammask/dreammask_fcclip-convnext-large_8xb2-368750it_coco-panoptic-nss.py.
#
# CONFOUND this variant removes: the headline config keeps FC-CLIP's batch of 16 but fills half of it with
# synthetic images (1 real + 1 synthetic per GPU), so at the same number of iterations it sees half as many real
# COCO images as the FC-CLIP recipe (8 instead of 16 per iteration, ~25 instead of ~50 COCO epochs). A
# difference between FC-CLIP and that config mixes "synthetic data + SRA" with "half the real data". Here the
# real stream is FC-CLIP's (16 per iteration, same sampler position after N iterations) and the synthetic
# images come on top.
# What still differs from FC-CLIP: 1.5x images (and compute, memory: 3 x 1024^2 LSJ crops per GPU) per
# iteration, and each loss is averaged over 24 images, so a real image weighs 2/3 of what it weighs in FC-CLIP's
# batch of 16. The learning rate stays the recipe's 1e-4 (BASE_LR for IMS_PER_BATCH 16; auto_scale_lr off),
# because no rule in the FC-CLIP/DreamMask code scales it with extra synthetic images.
#   bash tools/dist_train.sh \
#       configs/dreammask/dreammask_fcclip-convnext-large_8xb3-368750it_coco-panoptic-nss-2real1syn.py 8
_base_ = ['./dreammask_fcclip-convnext-large_8xb2-368750it_coco-panoptic-nss.py']
batch_size = 3      # per GPU: 2 real + 1 synthetic
num_synthetic = 1
train_dataloader = dict(
    batch_size=batch_size,
    sampler=dict(batch_size=batch_size, num_synthetic=num_synthetic))
