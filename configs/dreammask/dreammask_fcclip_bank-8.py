# Ablation: memory bank of 8 real features per class (default 32).
_base_ = ['../dreammask_fcclip.py']
model = dict(sra=dict(memory_bank_size=8))
