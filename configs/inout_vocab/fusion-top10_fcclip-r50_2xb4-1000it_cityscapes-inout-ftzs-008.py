# Two-model training (FC-CLIP R50, FTZS data), fusion: sum of the two top-10 softmaxes.
# Published (R50, seed 003 results table, PQ all / in / out): 57.932 / 63.929 / 49.688.
_base_ = ['./_base_/fusion_fcclip_r50_cityscapes-inout-ftzs-008.py']
model = dict(fusion=dict(_delete_=True, type='softmax_topk', k=10))
