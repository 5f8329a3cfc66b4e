# Ablation: SRA weight λ = 0.05 (default 0.1).
# λ = 0 is dreammask-sra-off_fcclip-convnext-large_8xb2-368750it_coco-panoptic-nss.py.
_base_ = ['./dreammask_fcclip-convnext-large_8xb2-368750it_coco-panoptic-nss.py']
model = dict(sra=dict(lambda_sra=0.05))
