# Ablation: real + synthetic data without the alignment loss (λ = 0: the SRA module is skipped entirely).
_base_ = ['./dreammask_fcclip-convnext-large_8xb2-368750it_coco-panoptic-nss.py']
model = dict(sra=dict(lambda_sra=0.0))
