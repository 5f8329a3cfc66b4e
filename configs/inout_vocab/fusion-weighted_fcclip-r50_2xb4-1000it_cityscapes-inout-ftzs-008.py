# Two-model training (FC-CLIP R50, FTZS data), fusion: logits weighted 0.6 / 0.4.
# Published (R50, seed 003 results table, PQ all / in / out): 57.422 / 64.234 / 48.056.
_base_ = ['./_base_/fusion_fcclip_r50_cityscapes-inout-ftzs-008.py']
model = dict(fusion=dict(_delete_=True, type='weighted_logits', weights=(0.6, 0.4)))
