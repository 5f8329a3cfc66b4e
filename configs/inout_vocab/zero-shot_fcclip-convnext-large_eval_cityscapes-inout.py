# Zero-shot: the released COCO FC-CLIP on the full Cityscapes val, no training (19-class vocabulary).
# Published (ConvNeXt-L, seed 003 results table, PQ all / in / out): 43.992 / 49.662 / 36.195.
# python tools/test.py THIS_CONFIG {zero_shot_checkpoint}
_base_ = ['./_base_/inout_fcclip_convnext-large.py']
# Seen classes for FC-CLIP's ensemble: COCO's (also restored from the converted checkpoint's meta).
train_vocabulary = 'coco_panoptic'
