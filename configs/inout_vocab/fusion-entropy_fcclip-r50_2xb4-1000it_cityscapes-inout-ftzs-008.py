# Two-model training (FC-CLIP R50, FTZS data), fusion:
# entropy-weighted softmax sum s1(1-H1) + s2(1-H2), H normalised by log K.
# Published (R50, seed 003 results table, PQ all / in / out): 58.227 / 64.238 / 49.962.
_base_ = ['./_base_/fusion_fcclip_r50_cityscapes-inout-ftzs-008.py']
model = dict(fusion=dict(_delete_=True, type='entropy', normalize_entropy=True))
