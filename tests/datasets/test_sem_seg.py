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


def test_16bit_ignore_and_range_check(tmp_path):
    label = np.array([[0, 846, 65535]], dtype=np.uint16)
    cv2.imwrite(str(tmp_path / 'l.tif'), label)
    out = LoadSemSegAnnotations()(dict(seg_map_path=str(tmp_path / 'l.tif')))
    assert out['gt_seg_map'].tolist() == [[0, 846, 255]]
    with pytest.raises(ValueError, match=r"l.tif' has label\(s\) \[846\] outside 0..149"):
        LoadSemSegAnnotations(num_classes=150)(dict(seg_map_path=str(tmp_path / 'l.tif')))
    with pytest.raises(FileNotFoundError, match='nope.png'):
        LoadSemSegAnnotations()(dict(seg_map_path=str(tmp_path / 'nope.png')))


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
