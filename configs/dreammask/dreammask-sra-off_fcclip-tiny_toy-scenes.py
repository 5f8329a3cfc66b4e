# Ablation on the CPU default: real + synthetic data, SRA off (lambda 0) — isolates the alignment loss.
_base_ = ['./dreammask_fcclip-tiny_toy-scenes.py']
model = dict(sra=dict(lambda_sra=0.0))
