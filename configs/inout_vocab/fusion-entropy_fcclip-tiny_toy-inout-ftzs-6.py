# Toy two-model training (entropy fusion): zero-shot model + lower-bound model trained together on the FTZS data.
_base_ = ['./_base_/fusion_fcclip-tiny_toy-inout-ftzs-6.py']
model = dict(fusion=dict(_delete_=True, type='entropy', normalize_entropy=True))
