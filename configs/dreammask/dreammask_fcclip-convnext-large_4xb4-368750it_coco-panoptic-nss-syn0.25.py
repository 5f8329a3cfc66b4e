# Ablation: a quarter of each batch synthetic. Same global batch 16 as 4 GPUs x 4 images (1 synthetic each);
# launch with 4 processes:
#   bash tools/dist_train.sh \
#       configs/dreammask/dreammask_fcclip-convnext-large_4xb4-368750it_coco-panoptic-nss-syn0.25.py 4
_base_ = ['./dreammask_fcclip-convnext-large_8xb2-368750it_coco-panoptic-nss.py']
batch_size = 4
train_dataloader = dict(batch_size=batch_size, sampler=dict(batch_size=batch_size, num_synthetic=1))
