# Region captioning on the toy's val referring objects (the RefCOCOg protocol of the real configs in small): the
# model captions each object, the caption is scored against the object's expressions (CIDEr, METEOR with java),
# and the model segments the object again from its own caption (re-segmentation cIoU / gIoU).
#   python tools/test.py configs/sa2va_sft/sa2va-mask-caption_tiny_eval_toy-captions.py <checkpoint>
_base_ = ['./sa2va_tiny_toy-mask-caption.py']

test_dataloader = dict(
    _delete_=True, batch_size=4, num_workers=1, persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type='ToyReferringDataset', data_root={{_base_.toy_root}}, split='val',
                 generate={{_base_.toy_generate}}, group='ref', test_mode=True,
                 pipeline=[dict(type='LoadImage'), dict(type='LoadReferringAnnotations'),
                           dict(type='ReferringToRegionPair', keep_expression=False), {{_base_.format_inputs}},
                           dict(type='PackMaskCaptionInputs')]))
test_evaluator = [dict(type='ReferringSegMetric'), dict(type='RegionCaptionMetric')]
