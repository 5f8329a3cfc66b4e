# Ablation: memory bank of 128 real features per class (default 32).
_base_ = ['./dreammask_fcclip-convnext-large_8xb2-368750it_coco-panoptic-nss.py']
model = dict(sra=dict(memory_bank_size=128))
