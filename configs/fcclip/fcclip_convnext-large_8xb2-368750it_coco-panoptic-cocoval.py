# The FC-CLIP ConvNeXt-L recipe with in-domain checkpoint selection: validate on COCO panoptic val (PQ, mIoU, mask
# AP against instances_val2017.json) every 5,000 iterations and keep the best COCO PQ. Base-COCO-
# PanopticSegmentation.yaml's own DATASETS.TEST is COCO val; the published model was instead selected on
# ADE20K-150 PQ (the parent config), so this variant does not reproduce the released checkpoint choice.
_base_ = ['./fcclip_convnext-large_8xb2-368750it_coco-panoptic.py']
val_dataloader = dict(
    _delete_=True,
    batch_size=1,  # detectron2 inference batch size 1
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset={{_base_.coco_val_dataset}})
test_dataloader = val_dataloader
val_evaluator = {{_base_.coco_val_evaluator}}
test_evaluator = val_evaluator
