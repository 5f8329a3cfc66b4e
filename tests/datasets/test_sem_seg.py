"""SemSegDataset + LoadSemSegAnnotations: listing, reduce_zero_label, 16-bit ignore, errors."""
import cv2
import numpy as np
import pytest

from ovseg.datasets import SemSegDataset
from ovseg.datasets.transforms import LoadSemSegAnnotations


@pytest.fixture()
def sem_root(tmp_path):
    (tmp_path / 'img/sub').mkdir(parents=True)
    (tmp_path / 'ann/sub').mkdir(parents=True)
    for name in ('a', 'sub/b'):
        cv2.imwrite(str(tmp_path / f'img/{name}.jpg'), np.full((6, 8, 3), 100, np.uint8))
        label = np.array([[0, 1, 2, 150] * 2] * 6, dtype=np.uint8)
        cv2.imwrite(str(tmp_path / f'ann/{name}.png'), label)
    return tmp_path


def test_reduce_zero_label_semantics(sem_root):
    ds = SemSegDataset(vocabulary='ade20k_150', data_root=str(sem_root),
                       data_prefix=dict(img='img', seg='ann'),
                       reduce_zero_label=True,
                       pipeline=[dict(type='LoadImage'), dict(type='LoadSemSegAnnotations'),
                                 dict(type='PackSegInputs')])
    assert len(ds) == 2 and ds.get_data_info(1)['img_id'] == 'sub/b'
    meta = ds.metainfo
    assert len(meta['classes']) == 150 and meta['classes'][0] == 'wall' and not any(meta['is_thing'])
    out = ds[0]
    assert out['data_samples'].gt_sem_seg.data[0, 0, :4].tolist() == [255, 0, 1, 149]
    plain = SemSegDataset(vocabulary='ade20k_150', data_root=str(sem_root),
                          data_prefix=dict(img='img', seg='ann'),
                          pipeline=[dict(type='LoadImage'), dict(type='LoadSemSegAnnotations')])
    assert plain[0]['gt_seg_map'][0, :4].tolist() == [0, 1, 2, 150]


def test_16bit_ignore_is_kept_and_range_check(tmp_path):
    label = np.array([[0, 846, 65535, 255]], dtype=np.uint16)
    cv2.imwrite(str(tmp_path / 'l.tif'), label)
    # the dataset's ignore value travels in results; it is never remapped (255 stays class 255)
    out = LoadSemSegAnnotations()(dict(seg_map_path=str(tmp_path / 'l.tif'), ignore_index=65535))
    assert out['gt_seg_map'].tolist() == [[0, 846, 65535, 255]] and out['ignore_index'] == 65535
    LoadSemSegAnnotations(num_classes=847)(dict(seg_map_path=str(tmp_path / 'l.tif'), ignore_index=65535))
    with pytest.raises(ValueError, match=r"l.tif' has label\(s\) \[846, 65535\] outside 0..149 and != the "
                       r'ignore value 255'):
        LoadSemSegAnnotations(num_classes=150)(dict(seg_map_path=str(tmp_path / 'l.tif')))
    with pytest.raises(FileNotFoundError, match='nope.png'):
        LoadSemSegAnnotations()(dict(seg_map_path=str(tmp_path / 'nope.png')))
    with pytest.raises(KeyError, match="no 'sem_seg_map_path'.*data_prefix\\['sem_seg'\\]"):
        LoadSemSegAnnotations(path_key='sem_seg_map_path')(dict(seg_map_path='x.png'))


def test_ignore_index_per_dataset(sem_root):
    kw = dict(data_root=str(sem_root), data_prefix=dict(img='img', seg='ann'))
    assert SemSegDataset(vocabulary='pascal_voc_21', **kw).metainfo['ignore_index'] == 255
    a847 = SemSegDataset(vocabulary='ade20k_847', **kw)
    assert a847.metainfo['ignore_index'] == 65535 and a847.get_data_info(0)['ignore_index'] == 65535
    assert SemSegDataset(vocabulary='pascal_context_459', **kw).metainfo['ignore_index'] == 65535
    with pytest.raises(ValueError, match='ignore_index 255 is one of the 847 class indices .* e.g. 65535'):
        SemSegDataset(vocabulary='ade20k_847', ignore_index=255, **kw)
    with pytest.raises(ValueError, match="metainfo\\['ignore_index'\\]: ignore_index 3 is one of the 21"):
        SemSegDataset(vocabulary='pascal_voc_21', metainfo=dict(ignore_index=3), **kw)


def test_class_255_counts_in_training_targets_and_miou(tmp_path):
    """A-847's class 255 ('pier') is a class: it becomes a training target and is scored by mIoU."""
    from ovseg.datasets.transforms import FixedSizeCrop, PackSegInputs
    from ovseg.evaluation.metrics import SemSegMetric
    (tmp_path / 'img').mkdir()
    (tmp_path / 'ann').mkdir()
    label = np.full((6, 8), 3, np.uint16)
    label[:, :3] = 255
    label[0, :] = 65535
    cv2.imwrite(str(tmp_path / 'img/a.jpg'), np.full((6, 8, 3), 90, np.uint8))
    cv2.imwrite(str(tmp_path / 'ann/a.tif'), label)
    ds = SemSegDataset(vocabulary='ade20k_847', data_root=str(tmp_path), seg_map_suffix='.tif',
                       data_prefix=dict(img='img', seg='ann'),
                       pipeline=[dict(type='LoadImage'), dict(type='LoadSemSegAnnotations', num_classes=847)])
    assert ds.metainfo['classes'][255] == 'pier'
    results = ds[0]
    padded = FixedSizeCrop(crop_size=(8, 10))(dict(results))
    assert (padded['gt_seg_map'][6:] == 65535).all() and (padded['gt_seg_map'][:, 8:] == 65535).all()
    sample = PackSegInputs(with_instances=True)(dict(results))['data_samples']
    assert sample.gt_instances.labels.tolist() == [3, 255]
    assert sample.gt_instances.masks[1].sum() == 15  # 5 labelled rows x 3 columns of class 255
    # mIoU: class 255 half right; 65535 pixels ignored whatever is predicted there
    pred = np.full((6, 8), 3, np.int64)
    pred[:, :2] = 255
    pred[0, :] = 7
    metric = SemSegMetric(classwise=True)
    metric.dataset_meta = ds.metainfo
    metric.process({}, [dict(pred_sem_seg=dict(data=pred[None]), gt_sem_seg=sample.gt_sem_seg.to_dict())])
    res = metric.compute_metrics(metric.results)
    iou_pier, iou_3 = 10 / 15, 25 / 30  # pier: tp 10, gt 15, pred 10; class 3: tp 25, gt 25, pred 30
    assert res['IoU-pier'] == pytest.approx(100 * iou_pier)
    assert res['mIoU'] == pytest.approx(100 * (iou_pier + iou_3) / 2)
    assert res['pACC'] == pytest.approx(100 * 35 / 40)


def test_split_file_palette_and_errors(sem_root):
    (sem_root / 'split.txt').write_text('a\n')
    ds = SemSegDataset(vocabulary='pascal_context_59', data_root=str(sem_root), ann_file='split.txt',
                       data_prefix=dict(img='img', seg='ann'), palette_from='pascal_context_59')
    assert len(ds) == 1 and ds.metainfo['palette'][0] == (180, 120, 120)
    with pytest.raises(ValueError, match="dataset is empty: no '\\*.png'"):
        SemSegDataset(vocabulary='pascal_voc_21', data_root=str(sem_root),
                      data_prefix=dict(img='img', seg='ann'),
                      img_suffix='.png')
    with pytest.raises(FileNotFoundError, match='image directory not found: .*missing'):
        SemSegDataset(vocabulary='pascal_voc_21', data_root=str(sem_root), data_prefix=dict(img='missing'))
    with pytest.raises(ValueError, match='is_thing has 2 entries for 21 classes'):
        SemSegDataset(vocabulary='pascal_voc_21', data_root=str(sem_root), data_prefix=dict(img='img'),
                      is_thing=[True, False])
    big = cv2.resize(cv2.imread(str(sem_root / 'ann/a.png'), 0), (4, 3), interpolation=cv2.INTER_NEAREST)
    cv2.imwrite(str(sem_root / 'ann/a.png'), big)
    ds = SemSegDataset(vocabulary='pascal_voc_21', data_root=str(sem_root),
                       data_prefix=dict(img='img', seg='ann'),
                       pipeline=[dict(type='LoadImage'), dict(type='LoadSemSegAnnotations')])
    with pytest.raises(ValueError, match=r"ann/a.png' is 4x3 .* image '.*img/a.jpg' is 8x6"):
        ds[0]


def test_palette_png_reads_indices(tmp_path):
    from PIL import Image
    im = Image.fromarray(np.array([[0, 1, 15, 255]], dtype=np.uint8), mode='P')
    im.putpalette([0, 0, 0, 128, 0, 0] + [7] * 762)
    im.save(tmp_path / 'voc.png')
    out = LoadSemSegAnnotations()(dict(seg_map_path=str(tmp_path / 'voc.png')))
    assert out['gt_seg_map'].tolist() == [[0, 1, 15, 255]]
