# Mapillary Vistas v1.2 panoptic val (65 classes; FC-CLIP `openvocab_mapillary_vistas_panoptic_val`).
_base_ = ['./panoptic_eval.py']
data_root = 'data/mapillary_vistas/'
test_pipeline = [
    dict(type='LoadImage'),
    # fcclip_convnext_large_eval_mapillary_vistas.yaml: MIN_SIZE_TEST 1024, MAX_SIZE_TEST 2560
    dict(type='ResizeShortestEdge', short_edge_length=1024, max_size=2560),
    dict(type='LoadPanopticAnnotations'),
    dict(type='PackSegInputs'),
]
val_dataloader = dict(dataset=dict(
    data_root=data_root,
    ann_file='validation/panoptic/panoptic_2018.json',
    data_prefix=dict(img='validation/images/', seg='validation/panoptic/'),
    vocabulary='mapillary_vistas',
    pipeline=test_pipeline))
test_dataloader = val_dataloader
# The Mapillary eval config turns INSTANCE_ON off: PQ and mIoU only.
val_evaluator = [dict(type='PanopticMetric'), dict(type='SemSegMetric')]
test_evaluator = val_evaluator
