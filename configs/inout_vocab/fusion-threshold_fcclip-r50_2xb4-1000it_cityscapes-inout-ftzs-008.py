# Two-model training (FC-CLIP R50, FTZS data), fusion: softmax sum, each counted where its max >= 0.7.
# Published (R50, seed 003 results table, PQ all / in / out): 57.745 / 63.719 / 49.531.
_base_ = ['./_base_/fusion_fcclip_r50_cityscapes-inout-ftzs-008.py']
model = dict(fusion=dict(_delete_=True, type='softmax_sum_threshold', threshold=0.7))
