# Ablation: real + synthetic data without the alignment loss (λ = 0: the SRA module is skipped entirely).
_base_ = ['../dreammask_fcclip.py']
model = dict(sra=dict(lambda_sra=0.0))
