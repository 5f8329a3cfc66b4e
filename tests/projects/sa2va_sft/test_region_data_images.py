"""Region-pair data from still images (SA-1B, Open Images V7): exact images and masks from fixtures in the real
formats, the filters, bad records named or skipped-and-counted, seeded annotation choice, MultiSourceDataset."""
import json

import cv2
import numpy as np
import pytest
from mmengine.registry import init_default_scope

from ovseg.datasets.referring import ReferringRecordError
from ovseg.datasets.sample_seed import SeededIndex
from ovseg.datasets.samplers.multi_source import MultiSourceDataset
from projects.sa2va_sft.sa2va_sft.region_data import OpenImagesSegDataset, SA1BDataset, read_class_names
from tests.projects.sa2va_sft.region_fixtures import rle, sa1b_anns, write_open_images, write_sa1b

PIPE = [dict(type='LoadRegionPair')]


@pytest.fixture(autouse=True)
def _scope():
    init_default_scope('ovseg')


def _seeded(i, s):
    return SeededIndex(i, (s, s + 1, s + 2))


def _rgb(path):
    return cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)


# ---------------------------------------------------------------------------------------------------- SA-1B
def test_sa1b_filters_index_and_skips(tmp_path):
    write_sa1b(tmp_path)
    ds = SA1BDataset(data_root=str(tmp_path), on_bad_record='skip')
    assert len(ds) == 2 and ds.get_data_info(0)['ann_ids'] == [11, 12, 13] and ds.skipped == {'empty mask': 1}
    with pytest.raises(ReferringRecordError, match=r'sa_1\.json: ann 14: the mask is empty'):
        SA1BDataset(data_root=str(tmp_path))
    ds = SA1BDataset(data_root=str(tmp_path), on_bad_record='skip', min_area=10)
    assert len(ds) == 1 and ds.get_data_info(0)['ann_ids'] == [11, 12]
    assert ds.skipped == {'empty mask': 1, 'annotations below min_area': 2,
                          'images without an annotation passing the filters': 1}
    assert SA1BDataset(data_root=str(tmp_path), on_bad_record='skip', min_area=10,
                       min_predicted_iou=0.8).get_data_info(0)['ann_ids'] == [11]
    assert SA1BDataset(data_root=str(tmp_path), on_bad_record='skip', min_area=10,
                       min_stability_score=0.96).get_data_info(0)['ann_ids'] == [12]
    ratio = SA1BDataset(data_root=str(tmp_path), on_bad_record='skip', max_area_ratio=0.2)
    assert ratio.get_data_info(0)['ann_ids'] == [11, 13]  # 600 px of 2240 > 20 %
    (tmp_path / 'list.txt').write_text('sa_000000/sa_2.json\n')
    assert len(SA1BDataset(data_root=str(tmp_path), file_list='list.txt')) == 1


def test_sa1b_loads_the_exact_image_and_a_seeded_annotation(tmp_path):
    write_sa1b(tmp_path, with_empty=False)
    anns = sa1b_anns()
    ds = SA1BDataset(data_root=str(tmp_path), min_area=10, pipeline=PIPE)
    img_path = str(tmp_path / 'sa_000000' / 'sa_1.jpg')
    drawn = set()
    for s in range(20):
        r = ds[_seeded(0, s)]
        ann = r['ann_id']
        drawn.add(ann)
        assert r['record_id'] == f'sa_1.json ann {ann}' and r['source'] == 'sa1b'
        assert np.array_equal(r['region_mask'], anns[ann]['mask']) and r['region_mask'].dtype == bool
        assert np.array_equal(r['img'], _rgb(img_path)) and r['img2'] is r['img']
        assert r['region_mask2'] is r['region_mask'] and r['img_path'] == r['img2_path'] == img_path
        assert r['ori_shape'] == (40, 56) and r['expression'] is None and r['category_name'] is None
        assert r['ann_id'] == ds[_seeded(0, s)]['ann_id']  # same index, same draw
    assert drawn == {11, 12}
    test = SA1BDataset(data_root=str(tmp_path), min_area=10, pipeline=PIPE, test_mode=True)
    assert {test[0]['ann_id'] for _ in range(3)} == {12}  # the largest


def test_sa1b_missing_image_names_file_and_record(tmp_path):
    write_sa1b(tmp_path, with_empty=False)
    (tmp_path / 'sa_000000' / 'sa_1.jpg').unlink()
    ds = SA1BDataset(data_root=str(tmp_path), pipeline=PIPE, test_mode=True)
    with pytest.raises(ReferringRecordError, match=r'sa_1\.json: ann 12: image file not found: .*sa_1\.jpg'):
        ds[0]
    checked = SA1BDataset(data_root=str(tmp_path), check_files=True, on_bad_record='skip')
    assert len(checked) == 1 and checked.skipped == {'missing image': 1}
    (tmp_path / 'sa_000000' / 'sa_1.jpg').write_bytes(b'not a jpeg')
    with pytest.raises(ReferringRecordError, match=r'cannot decode image .*sa_1\.jpg'):
        SA1BDataset(data_root=str(tmp_path), pipeline=PIPE)[_seeded(0, 0)]


# ---------------------------------------------------------------------------------------------------- Open Images
def test_open_images_masks_thresholds_layouts_and_resize(tmp_path):
    fx = write_open_images(tmp_path)
    ds = OpenImagesSegDataset(data_root=str(tmp_path), ann_file='seg.csv', class_file='classes.csv', pipeline=PIPE)
    assert len(ds) == 5 and ds.skipped == {}
    r = ds[0]
    assert r['record_id'] == 'seg.csv row 1' and r['source'] == 'open_images' and r['category_name'] == 'Cat'
    assert np.array_equal(r['region_mask'], fx['masks'][1])  # gray 123 is in, 122 out
    assert r['region_mask'][4].any() and not r['region_mask'][20].any()
    assert np.array_equal(r['img'], _rgb(tmp_path / 'images' / f"{fx['ids']['a']}.jpg")) and r['img2'] is r['img']
    assert r['img_shape'] == (40, 50) and r['expression'] is None
    r = ds[1]  # fiftyone layout masks/F/..., mask PNG at half the image's resolution: nearest-resized
    assert r['region_mask'].shape == (40, 56) and np.array_equal(r['region_mask'], fx['masks'][2])
    assert r['category_name'] == 'Dog' and r['img_path'].endswith(f"images/{fx['ids']['f']}.jpg")
    filt = OpenImagesSegDataset(data_root=str(tmp_path), ann_file='seg.csv', min_predicted_iou=0.5)
    assert len(filt) == 4 and filt.skipped == {'rows below min_predicted_iou': 1}
    assert filt.get_data_info(0)['category_name'] is None
    assert read_class_names(str(tmp_path / 'classes.csv')) == {'/m/01yrx': 'Cat', '/m/0bt9lr': 'Dog'}


def test_open_images_bad_rows_named_or_skipped(tmp_path):
    write_open_images(tmp_path)
    ds = OpenImagesSegDataset(data_root=str(tmp_path), ann_file='seg.csv', pipeline=PIPE)
    with pytest.raises(ReferringRecordError,
                       match=r'seg\.csv row 4: the region mask of view A .*is empty \(annotation .*_b4\.png'):
        ds[3]
    with pytest.raises(ReferringRecordError, match=r'row 5 .*mask PNG not found \(looked for .*_b5\.png and '
                                                   r'.*/0/.*_b5\.png\)'):
        ds[4]
    skip = OpenImagesSegDataset(data_root=str(tmp_path), ann_file='seg.csv', pipeline=PIPE, on_bad_record='skip')
    assert skip.pipeline(skip.get_data_info(3)) is None
    assert skip[_seeded(3, 1)]['record_id'] != 'seg.csv row 4'  # mmengine drew another sample, seeded
    checked = OpenImagesSegDataset(data_root=str(tmp_path), ann_file='seg.csv', check_files=True,
                                   on_bad_record='skip')
    assert len(checked) == 4 and checked.skipped == {'missing mask': 1}
    with pytest.raises(ReferringRecordError, match=r'seg\.csv: row 5: mask PNG not found'):
        OpenImagesSegDataset(data_root=str(tmp_path), ann_file='seg.csv', check_files=True)
    (tmp_path / 'images' / '0a1b2c3d4e5f6a7b.jpg').unlink()
    with pytest.raises(ReferringRecordError, match=r'seg\.csv: row 1 .*image file not found: .*0a1b2c3d4e5f6a7b\.jpg'):
        ds[0]
    (tmp_path / 'bad.csv').write_text('ImageID,LabelName\nx,y\n')
    with pytest.raises(ReferringRecordError, match=r"bad\.csv: the header lacks column\(s\) \['MaskPath'\]"):
        OpenImagesSegDataset(data_root=str(tmp_path), ann_file='bad.csv')


def test_still_image_sources_mix_with_max_samples(tmp_path):
    write_sa1b(tmp_path / 'sa1b', with_empty=False)
    write_open_images(tmp_path / 'oi')
    mix = MultiSourceDataset(dict(
        sa1b=dict(dataset=dict(type='SA1BDataset', data_root=str(tmp_path / 'sa1b'), pipeline=PIPE), max_samples=1),
        oi=dict(dataset=dict(type='OpenImagesSegDataset', data_root=str(tmp_path / 'oi'), ann_file='seg.csv',
                             pipeline=PIPE), max_samples=2)))
    assert len(mix) == 3 and mix.source_of(2) == ('oi', 1)
    assert [mix[_seeded(i, 0)]['source'] for i in range(3)] == ['sa1b', 'open_images', 'open_images']
    assert mix[_seeded(0, 5)]['ann_id'] == mix[_seeded(0, 5)]['ann_id']


def test_sa1b_malformed_rle_is_caught_before_decoding(tmp_path):
    write_sa1b(tmp_path, with_empty=False)
    path = tmp_path / 'sa_000000' / 'sa_2.json'
    doc = json.loads(path.read_text())
    big = np.zeros((80, 112), bool)
    big[60:70, 90:100] = True  # run lengths summing to 80*112, not the declared 40*56
    doc['annotations'][0]['segmentation']['counts'] = rle(big)['counts']
    path.write_text(json.dumps(doc))
    checked = SA1BDataset(data_root=str(tmp_path), validate_rle=True, on_bad_record='skip')
    assert len(checked) == 1
    assert checked.skipped == {'bad RLE': 1, 'images without an annotation passing the filters': 1}
    lazy = SA1BDataset(data_root=str(tmp_path), pipeline=PIPE)  # form and size only at construction
    with pytest.raises(ReferringRecordError, match=r'sa_2\.json: ann 21: malformed compressed RLE'):
        lazy[1]
