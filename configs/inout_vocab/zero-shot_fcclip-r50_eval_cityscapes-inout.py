# Zero-shot: the released COCO FC-CLIP on the full Cityscapes val, no training (19-class vocabulary).
# Published (R50, seed 003 results table, PQ all / in / out): 40.311 / 48.234 / 29.416.
# python tools/test.py THIS_CONFIG {zero_shot_checkpoint}
_base_ = ['./_base_/inout_fcclip_r50.py']
# Seen classes for FC-CLIP's ensemble: COCO's (also restored from the converted checkpoint's meta).
train_vocabulary = 'coco_panoptic'
