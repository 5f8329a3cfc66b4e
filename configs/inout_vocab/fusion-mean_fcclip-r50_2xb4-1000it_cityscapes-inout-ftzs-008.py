# Two-model training (FC-CLIP R50, FTZS data), fusion: mean of the logits.
# Published (R50, seed 003 results table, PQ all / in / out): 56.902 / 63.457 / 47.889.
_base_ = ['./_base_/fusion_fcclip_r50_cityscapes-inout-ftzs-008.py']
model = dict(fusion='mean_logits')
