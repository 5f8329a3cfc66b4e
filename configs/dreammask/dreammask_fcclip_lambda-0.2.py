# Ablation: SRA weight λ = 0.2 (default 0.1).
_base_ = ['../dreammask_fcclip.py']
model = dict(sra=dict(lambda_sra=0.2))
