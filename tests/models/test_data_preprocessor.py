"""SegDataPreprocessor: normalisation, size-divisor padding, GT padding in training, predict mode."""
import pytest
import torch
from mmengine.structures import InstanceData, PixelData

from ovseg.models.data_preprocessor import CLIP_MEAN, CLIP_STD, SegDataPreprocessor
from ovseg.registry import MODELS
from ovseg.structures.seg_data_sample import SegDataSample


def _sample(h, w, n=2):
    s = SegDataSample(metainfo=dict(ori_shape=(h, w), img_shape=(h, w)))
    inst = InstanceData()
    inst.masks = torch.ones(n, h, w, dtype=torch.bool)
    inst.labels = torch.arange(n)
    s.gt_instances = inst
    s.gt_sem_seg = PixelData(data=torch.zeros(1, h, w, dtype=torch.long))
    s.gt_panoptic_seg = PixelData(data=torch.full((1, h, w), 7, dtype=torch.long))
    return s


def _batch():
    inputs = [torch.full((3, 50, 70), 200, dtype=torch.uint8), torch.zeros((3, 64, 40), dtype=torch.uint8)]
    return dict(inputs=inputs, data_samples=[_sample(50, 70), _sample(64, 40, n=1)])


def test_training_pads_images_and_gt():
    pp = MODELS.build(dict(type='SegDataPreprocessor'))
    out = pp(_batch(), training=True)
    x, samples = out['inputs'], out['data_samples']
    assert x.shape == (2, 3, 64, 96) and x.dtype == torch.float32
    mean, std = torch.tensor(CLIP_MEAN), torch.tensor(CLIP_STD)
    assert torch.allclose(x[0, :, 0, 0], (200 - mean) / std)
    assert torch.allclose(x[1, :, 0, 0], (0 - mean) / std)
    assert (x[0, :, 50:] == 0).all() and (x[0, :, :, 70:] == 0).all() and (x[1, :, :, 40:] == 0).all()
    s0, s1 = samples
    assert s0.batch_input_shape == (64, 96) and s0.pad_shape == (64, 96) and s1.pad_shape == (64, 64)
    assert s0.gt_instances.masks.shape == (2, 64, 96) and s0.gt_instances.masks.dtype == torch.bool
    assert s0.gt_instances.masks[:, :50, :70].all() and not s0.gt_instances.masks[:, 50:].any()
    assert s0.gt_sem_seg.shape == (64, 96) and (s0.gt_sem_seg.data[0, 50:] == 255).all()
    assert (s0.gt_sem_seg.data[0, :50, :70] == 0).all()
    assert (s1.gt_panoptic_seg.data[0, :, 40:] == 0).all() and (s1.gt_panoptic_seg.data[0, :, :40] == 7).all()


def test_predict_leaves_gt_at_original_size():
    pp = SegDataPreprocessor(size_divisor=1)
    out = pp(_batch(), training=False)
    assert out['inputs'].shape == (2, 3, 64, 70)
    s0 = out['data_samples'][0]
    assert s0.gt_sem_seg.shape == (50, 70) and s0.batch_input_shape == (64, 70) and s0.pad_shape == (50, 70)


def test_stacked_input_no_samples_and_options():
    pp = SegDataPreprocessor(mean=None, std=None, pad_value=-1.0)
    out = pp(dict(inputs=torch.full((2, 3, 33, 32), 5, dtype=torch.uint8)))
    assert out['inputs'].shape == (2, 3, 64, 32) and out['data_samples'] is None
    assert (out['inputs'][:, :, :33] == 5).all() and (out['inputs'][:, :, 33:] == -1).all()
    with pytest.raises(ValueError, match='both'):
        SegDataPreprocessor(mean=(1, 2, 3), std=None)
    with pytest.raises(ValueError, match='3×H×W'):
        SegDataPreprocessor()(dict(inputs=[torch.zeros(1, 4, 4)]))
    assert 'mean' not in SegDataPreprocessor().state_dict()  # not persisted into checkpoints
