# Sa2VA-4B mask-caption SFT on the seed's four sources, mixed per batch: SA-V frame pairs (another frame of the same
# masklet is the segmentation view), SA-1B and Open Images V7 regions (the same image), RefCOCO (its expression is the
# caption: no generation, stage 2 + caption LM loss). Launch: bash tools/dist_train.sh <this config> 8
_base_ = ['./_base_/mask_caption_recipe.py']

max_iters = 10000  # the seed trains one pass over its mix; set it to your mix's size / (8 GPUs x 2)
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-5, by_epoch=False, begin=0, end=int(0.05 * max_iters)),
    dict(type='CosineAnnealingLR', eta_min=0.0, by_epoch=False, begin=int(0.05 * max_iters), end=max_iters),
]

train_dataloader = dict(
    batch_size=2, num_workers=4, persistent_workers=True,
    sampler=dict(_delete_=True, type='MultiSourceSampler', batch_size=2,
                 weights=dict(sav=1.0, sa1b=1.0, open_images=1.0, refcoco=1.0)),  # the seed: one uniform mix
    dataset=dict(
        _delete_=True, type='MultiSourceDataset', metainfo='refcoco',
        sources=dict(
            # SA-V: <data_root>/sav_train/sav_000/sav_000001.mp4 + sav_000001_manual.json (Meta's release layout)
            sav=dict(dataset=dict(type='SAVMaskletDataset', data_root='data/sav', video_dir='sav_train',
                                  ann_dir='sav_train', recursive=True, masklet_types=('manual',),
                                  on_bad_record='skip', pipeline={{_base_.region_pipeline}}),
                     max_samples=None),
            # SA-1B: sa_000000/sa_1.jpg + sa_1.json; masks of at least 32x32 px with SAM's own quality scores
            sa1b=dict(dataset=dict(type='SA1BDataset', data_root='data/sa1b', min_area=32 * 32,
                                   min_predicted_iou=0.88, min_stability_score=0.95, on_bad_record='skip',
                                   pipeline={{_base_.region_pipeline}}),
                      max_samples=None),
            # Open Images V7 segmentation: train-annotations-object-segmentation.csv + masks/ + images/
            open_images=dict(dataset=dict(type='OpenImagesSegDataset', data_root='data/open_images',
                                          ann_file='train-annotations-object-segmentation.csv', mask_dir='masks',
                                          img_dir='images', class_file='oidv7-class-descriptions.csv',
                                          on_bad_record='skip', pipeline={{_base_.region_pipeline}}),
                             max_samples=None),
            refcoco=dict(dataset=dict(type='RefCocoDataset', data_root='data/ref_seg', dataset='refcoco',
                                      split='train', group='ref', pipeline={{_base_.referring_region_pipeline}}),
                         max_samples=None))))

# Region captioning on RefCOCOg val: the model captions each referred region and segments it again from its own
# caption (re-segmentation cIoU / gIoU: the loop's criterion) and the captions are scored against the sentences.
val_dataloader = dict(
    batch_size=1, num_workers=2, persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(_delete_=True, type='RefCocoDataset', data_root='data/ref_seg', dataset='refcocog', split='val',
                 group='ref', test_mode=True,
                 pipeline=[dict(type='LoadImage'), dict(type='LoadReferringAnnotations'),
                           dict(type='ReferringToRegionPair', keep_expression=False),
                           dict(type='FormatMaskCaptionInputs', image_size=448, max_num=12, use_thumbnail=True,
                                sam_image_size=1024),
                           dict(type='PackMaskCaptionInputs')]))
test_dataloader = val_dataloader
val_evaluator = [dict(type='ReferringSegMetric'), dict(type='RegionCaptionMetric')]
test_evaluator = val_evaluator
