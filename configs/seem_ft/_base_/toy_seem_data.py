# ToyScenes with grounding sentences (projects/seem_ft/seem_ft/data/toy_seem.py), the CPU toy of SEEM fine-tuning.
# Fine-tuning split: ToyScenes seed 0 with all 11 classes (star and water included), 128x128. The shared tiny
# "pretrained" checkpoint (seem_tiny_toy-pretrain.py) is trained on another draw (seed 1) without star / water, so
# the fine-tuning data has new images and two classes the pretrained model never saw.
#   val  (during training, tools/train.py): panoptic PQ + mIoU (PanopticMetric, SemSegMetric)
#   test (tools/test.py): grounding cIoU / gIoU of every val sentence (ReferringSegMetric on ToySEEMReferringDataset)
# mmengine 0.10.7's ValLoop takes one dataloader, so the two evaluations are the val and the test loop.
toy_root = 'data/toy_scenes_seem'
toy_generate = dict(num_train=200, num_val=50, size=(128, 128), seed=0, novel_classes=[])
image_size = 128  # the toy images are 128²: LSJ crops back to the image size

train_pipeline = [
    dict(type='LoadImage'),
    dict(type='LoadPanopticAnnotations'),
    dict(type='RandomFlip', prob=0.5),  # grounding sentences swap left / right with the image (PackSEEMInputs)
    dict(type='RandomResizeScale', min_scale=0.5, max_scale=1.5, target_size=(image_size, image_size)),
    dict(type='FixedSizeCrop', crop_size=(image_size, image_size)),
    dict(type='SampleGroundings', max_num=5),  # SEEM GROUNDING.MAX_LEN 5: 1..4 sentences per image
    dict(type='PackSEEMInputs'),
]
test_pipeline = [
    dict(type='LoadImage'),
    dict(type='LoadPanopticAnnotations'),
    dict(type='PackSegInputs'),
]
referring_pipeline = [
    dict(type='LoadImage'),
    dict(type='LoadReferringAnnotations'),
    dict(type='PackReferringInputs'),
]

train_batch_size_per_gpu = 4
train_batch_size_total = 4  # 1 process on the CPU; checked against per_gpu x world size x accumulation
train_dataloader = dict(
    batch_size=train_batch_size_per_gpu,
    num_workers=1,  # 2-core CPU: one loader process next to the training process
    persistent_workers=True,
    sampler=dict(type='ResumableInfiniteSampler', shuffle=True),
    dataset=dict(type='ToySEEMDataset', data_root=toy_root, split='train', generate=toy_generate,
                 pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=8,
    num_workers=1,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type='ToySEEMDataset', data_root=toy_root, split='val', generate=toy_generate, test_mode=True,
                 pipeline=test_pipeline))
test_dataloader = dict(
    batch_size=8,
    num_workers=1,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type='ToySEEMReferringDataset', data_root=toy_root, split='val', generate=toy_generate,
                 test_mode=True, pipeline=referring_pipeline))
val_evaluator = [dict(type='PanopticMetric'), dict(type='SemSegMetric')]
test_evaluator = [dict(type='ReferringSegMetric')]
