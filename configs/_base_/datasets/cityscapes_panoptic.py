# Cityscapes panoptic val (19 classes; JSON category ids = label ids 7..33 → contiguous = train ids 0..18).
# JSON/PNGs from cityscapesscripts createPanopticImgs (tools/dataset_converters/prepare_cityscapes.py).
_base_ = ['./panoptic_eval.py']
data_root = 'data/cityscapes/'
test_pipeline = [
    dict(type='LoadImage'),
    # fcclip_convnext_large_eval_cityscapes.yaml: MIN_SIZE_TEST 1024, MAX_SIZE_TEST 2560
    dict(type='ResizeShortestEdge', short_edge_length=1024, max_size=2560),
    dict(type='LoadPanopticAnnotations'),
    dict(type='PackSegInputs'),
]
val_dataloader = dict(dataset=dict(
    data_root=data_root,
    ann_file='gtFine/cityscapes_panoptic_val.json',
    data_prefix=dict(img='leftImg8bit/val/', seg='gtFine/cityscapes_panoptic_val/'),
    img_subdir_sep='_',  # leftImg8bit/val/<city>/<city>_xxxxxx_xxxxxx_leftImg8bit.png
    vocabulary='cityscapes',
    pipeline=test_pipeline))
test_dataloader = val_dataloader
# train_net.py, evaluator_type `cityscapes_panoptic_seg`: COCOPanopticEvaluator, CityscapesSemSegEvaluator and
# CityscapesInstanceEvaluator. AP is cityscapesScripts' instance evaluation on gtFine/val/*_instanceIds.png.
# mIoU: SemSegMetric on the panoptic GT's labels (the 19 evaluated classes; ignoreInEval pixels are VOID), i.e.
# the labels CityscapesSemSegEvaluator reads; its per-class IoU equals cityscapesScripts' wherever a class
# occurs in the GT, which every class does on the full val split.
val_evaluator = [
    dict(type='PanopticMetric'),
    dict(type='SemSegMetric'),
    dict(type='CityscapesInstanceAPMetric', gt_dir=data_root + 'gtFine/val'),
]
test_evaluator = val_evaluator
