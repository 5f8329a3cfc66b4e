# Mapillary Vistas v1.2 panoptic val (65 classes; FC-CLIP `openvocab_mapillary_vistas_panoptic_val`).
_base_ = ['./panoptic_eval.py']
data_root = 'data/mapillary_vistas/'
test_pipeline = [
    dict(type='LoadImage'),
    # fcclip_convnext_large_eval_mapillary_vistas.yaml: MIN_SIZE_TEST 1024, MAX_SIZE_TEST 2560
    dict(type='ResizeShortestEdge', short_edge_length=1024, max_size=2560),
    dict(type='LoadPanopticAnnotations', with_seg_map=False),
    dict(type='LoadSemSegAnnotations', path_key='sem_seg_map_path'),  # validation/labels (mIoU GT)
    dict(type='PackSegInputs'),
]
val_dataloader = dict(dataset=dict(
    data_root=data_root,
    ann_file='validation/panoptic/panoptic_2018.json',
    # register_mapillary_vistas_panoptic.py: mIoU on the release's semantic labels (class indices 0..64,
    # 65 = unlabelled: ignore_label=65), PQ on the panoptic PNGs.
    data_prefix=dict(img='validation/images/', seg='validation/panoptic/', sem_seg='validation/labels/'),
    metainfo=dict(ignore_index=65),
    vocabulary='mapillary_vistas',
    pipeline=test_pipeline))
test_dataloader = val_dataloader
# The Mapillary eval config turns INSTANCE_ON off: PQ and mIoU only.
val_evaluator = [dict(type='PanopticMetric'), dict(type='SemSegMetric')]
test_evaluator = val_evaluator
