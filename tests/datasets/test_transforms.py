"""Transform invariants: LSJ sizes, crop padding, flip consistency, test resize, packing."""
import numpy as np
import pytest
import torch

from ovseg.datasets.panoptic_utils import segments_to_semantic
from ovseg.datasets.transforms import (
    FixedSizeCrop,
    LoadImage,
    LoadPanopticAnnotations,
    PackSegInputs,
    RandomFlip,
    RandomResizeScale,
    ResizeShortestEdge,
    resize_nearest,
)
from ovseg.registry import TRANSFORMS


def _sample(h=60, w=90, with_crowd=False):
    """A synthetic results dict: a stuff band, one thing (id 5001) and optionally a crowd region."""
    img = np.random.default_rng(0).integers(0, 256, (h, w, 3), dtype=np.uint8)
    pan = np.full((h, w), 7000, dtype=np.int64)
    pan[10:30, 20:50] = 5001
    pan[h - 5:, :] = 0  # VOID strip
    segs = [dict(id=7000, category_id=1, iscrowd=0, isthing=False, area=0),
            dict(id=5001, category_id=0, iscrowd=0, isthing=True, area=600)]
    if with_crowd:
        pan[35:45, 60:80] = 5002
        segs.append(dict(id=5002, category_id=0, iscrowd=1, isthing=True, area=200))
    return dict(img=img, img_shape=(h, w), ori_shape=(h, w), gt_pan_id=pan, segments_info=segs,
                gt_seg_map=segments_to_semantic(pan, segs), img_path='x.png', seg_map_path='x_pan.png')


def test_registered():
    for name in ('LoadImage', 'LoadPanopticAnnotations', 'LoadSemSegAnnotations', 'RandomResizeScale',
                 'FixedSizeCrop', 'RandomFlip', 'ResizeShortestEdge', 'PackSegInputs'):
        assert TRANSFORMS.get(name) is not None


def test_lsj_output_fits_target_times_scale():
    t = RandomResizeScale(0.1, 2.0, (1024, 1024))
    assert t.output_size((480, 640), 1.0) == (768, 1024)
    assert t.output_size((480, 640), 0.5) == (384, 512)
    assert t.output_size((640, 480), 2.0) == (2048, 1536)
    np.random.seed(0)
    for _ in range(20):
        r = _sample()
        out = t(r)
        h, w = out['img'].shape[:2]
        assert out['gt_pan_id'].shape == (h, w) == out['gt_seg_map'].shape
        # one side hits target*scale (±rounding), aspect ratio kept
        assert abs(h / w - 60 / 90) < 0.05 and h <= 2048 and w <= 2048
        assert abs(out['scale_factor'][0] - w / 90) < 1e-9
        assert set(np.unique(out['gt_pan_id'])) <= {0, 7000, 5001}  # nearest: no blended ids


def test_fixed_size_crop_pads_with_contract_values():
    np.random.seed(1)
    out = FixedSizeCrop((100, 120))(_sample(60, 90))
    assert out['img'].shape == (100, 120, 3)
    assert (out['img'][60:] == 128).all() and (out['img'][:, 90:] == 128).all()
    assert (out['gt_pan_id'][60:] == 0).all() and (out['gt_pan_id'][:, 90:] == 0).all()
    assert (out['gt_seg_map'][60:] == 255).all() and (out['gt_seg_map'][:, 90:] == 255).all()
    assert out['img_shape'] == (100, 120)


def test_fixed_size_crop_crops_consistently():
    np.random.seed(2)
    r = _sample(60, 90)
    ref = r['img'].copy(), r['gt_pan_id'].copy()
    out = FixedSizeCrop((40, 50))(r)
    x0, y0, x1, y1 = out['crop_bbox']
    assert (x1 - x0, y1 - y0) == (50, 40)
    assert np.array_equal(out['img'], ref[0][y0:y1, x0:x1])
    assert np.array_equal(out['gt_pan_id'], ref[1][y0:y1, x0:x1])


def test_flip_consistency():
    np.random.seed(0)
    r = _sample()
    img, pan = r['img'].copy(), r['gt_pan_id'].copy()
    out = RandomFlip(prob=1.0)(r)
    assert out['flip'] and out['flip_direction'] == 'horizontal'
    assert np.array_equal(out['img'], img[:, ::-1]) and np.array_equal(out['gt_pan_id'], pan[:, ::-1])
    # the thing's pixels still carry the thing's colours after the flip
    assert np.array_equal(np.sort(out['img'][out['gt_pan_id'] == 5001], axis=0),
                          np.sort(img[pan == 5001], axis=0))
    assert not RandomFlip(prob=0.0)(_sample())['flip']
    with pytest.raises(ValueError, match='horizontal'):
        RandomFlip(direction='vertical')


def test_resize_shortest_edge_keeps_gt_at_original_size():
    r = _sample(600, 900)
    out = ResizeShortestEdge(800, 1333)(r)
    assert out['img'].shape[:2] == (800, 1200)
    assert out['gt_pan_id'].shape == (600, 900) and out['ori_shape'] == (600, 900)
    assert out['scale_factor'] == pytest.approx((1200 / 900, 800 / 600))
    assert ResizeShortestEdge.get_output_shape(480, 2000, 800, 1333) == (320, 1333)
    both = ResizeShortestEdge(30, 1000, keys=('img', 'gt_pan_id', 'gt_seg_map'))(_sample(60, 90))
    assert both['img'].shape[:2] == both['gt_pan_id'].shape == both['gt_seg_map'].shape == (30, 45)


def test_resize_nearest_centre_sampling():
    a = np.arange(4).reshape(2, 2)
    assert np.array_equal(resize_nearest(a, (4, 4)), np.repeat(np.repeat(a, 2, 0), 2, 1))
    assert np.array_equal(resize_nearest(np.arange(8)[None], (1, 4)), [[1, 3, 5, 7]])


def test_pack_instances_skip_crowd_keep_cropped_segments_empty():
    r = _sample(with_crowd=True)
    r['segments_info'].append(dict(id=9999, category_id=1, iscrowd=0, isthing=True, area=5))  # cropped away
    packed = PackSegInputs(with_instances=True)(dict(r))
    inputs, ds = packed['inputs'], packed['data_samples']
    assert inputs.dtype == torch.uint8 and inputs.shape == (3, 60, 90)
    assert torch.equal(inputs.permute(1, 2, 0), torch.from_numpy(r['img']))
    # FC-CLIP's LSJ mapper: every non-crowd segments_info entry is a target, an empty mask if the crop removed it
    assert ds.gt_instances.labels.tolist() == [1, 0, 1]
    assert ds.gt_instances.masks.dtype == torch.bool and ds.gt_instances.masks.shape == (3, 60, 90)
    assert ds.gt_instances.masks[1].sum() == 600 and ds.gt_instances.masks[2].sum() == 0
    # the documented option: only segments still in the map
    dropped = PackSegInputs(with_instances=True, keep_empty_segments=False)(dict(r))['data_samples']
    assert dropped.gt_instances.labels.tolist() == [1, 0]
    assert ds.gt_panoptic_seg.data.shape == (1, 60, 90) and ds.gt_sem_seg.data.dtype == torch.long
    assert 'is_synthetic' not in ds.metainfo and ds.img_path == 'x.png' and len(ds.segments_info) == 4
    # crowd pixels keep their class in the semantic map (detectron2 convention) but give no target
    assert int(ds.gt_sem_seg.data[0, 40, 70]) == 0


def test_pack_semantic_only_and_empty():
    r = _sample()
    del r['gt_pan_id']
    ds = PackSegInputs(with_instances=True)(r)['data_samples']
    assert sorted(ds.gt_instances.labels.tolist()) == [0, 1] and 'gt_panoptic_seg' not in ds
    r = dict(img=np.zeros((8, 8, 3), np.uint8), gt_seg_map=np.full((8, 8), 255), is_synthetic=True)
    ds = PackSegInputs(with_instances=True)(dict(r))['data_samples']
    assert ds.gt_instances.masks.shape == (0, 8, 8) and 'is_synthetic' not in ds.metainfo  # a project's key
    ds = PackSegInputs(with_instances=True, extra_meta_keys=('is_synthetic',))(r)['data_samples']
    assert ds.is_synthetic is True


def test_full_train_pipeline_on_toy(toy_root):
    from ovseg.datasets import ToyScenesDataset
    pipe = [dict(type='LoadImage'), dict(type='LoadPanopticAnnotations'), dict(type='RandomFlip'),
            dict(type='RandomResizeScale', min_scale=0.5, max_scale=2.0, target_size=(64, 64)),
            dict(type='FixedSizeCrop', crop_size=(64, 64)), dict(type='PackSegInputs', with_instances=True)]
    ds = ToyScenesDataset(str(toy_root), split='train', generate=False, pipeline=pipe)
    np.random.seed(0)
    for i in range(4):
        out = ds[i]
        s = out['data_samples']
        assert out['inputs'].shape == (3, 64, 64)
        assert s.gt_instances.masks.shape[1:] == (64, 64)
        assert (s.gt_instances.labels < len(ds.metainfo['classes'])).all()
        # every target mask is exactly one segment of the panoptic map
        pan = s.gt_panoptic_seg.data[0]
        for m in s.gt_instances.masks:
            assert len(torch.unique(pan[m])) == 1 and int(pan[m][0]) != 0


def test_load_image_rgb(tmp_path):
    import cv2
    img = np.zeros((4, 5, 3), np.uint8)
    img[..., 0] = 200  # red in RGB
    cv2.imwrite(str(tmp_path / 'a.png'), img[..., ::-1])
    out = LoadImage()(dict(img_path=str(tmp_path / 'a.png')))
    assert out['img'][0, 0].tolist() == [200, 0, 0] and out['ori_shape'] == (4, 5)
    with pytest.raises(FileNotFoundError, match='missing.png'):
        LoadImage()(dict(img_path=str(tmp_path / 'missing.png')))
    with pytest.raises(ValueError, match='expected 8-bit RGB'):
        cv2.imwrite(str(tmp_path / 'g.png'), np.zeros((4, 5), np.uint8))
        LoadPanopticAnnotations()(dict(seg_map_path=str(tmp_path / 'g.png'), segments_info=[]))
