# Ablation: SRA weight λ = 0.05 (default 0.1). λ = 0 is dreammask_fcclip_sra-off.py.
_base_ = ['../dreammask_fcclip.py']
model = dict(sra=dict(lambda_sra=0.05))
