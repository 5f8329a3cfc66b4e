"""label_configs: which segments each Cityscapes configuration deletes, summaries, and every bad-input error."""
import copy
import json

import pytest

from projects.inout_vocab.inout_vocab.label_configs import (
    CITYSCAPES_CATEGORY_IDS,
    CITYSCAPES_CATEGORY_NAMES,
    CITYSCAPES_DELETE_ORDER,
    check_categories,
    config_tag,
    delete_segments,
    deleted_class_names,
    deleted_ids,
    parse_config_list,
)

# (segment id, category id, area) per image; Cityscapes encodes things as label_id * 1000 + instance.
FAKE_SEGMENTS = {
    0: [(7, 7, 500), (23, 23, 300), (24000, 24, 40), (24001, 24, 60), (26000, 26, 200), (33000, 33, 25)],
    1: [(7, 7, 700), (11, 11, 90), (25000, 25, 15), (27000, 27, 120), (24, 24, 33)],  # 24: a crowd 'persongroup'
    2: [(8, 8, 400), (28000, 28, 500), (31000, 31, 800), (32000, 32, 30), (33000, 33, 20), (33001, 33, 22)],
}


def fake_cityscapes(segments: dict | None = None) -> dict:
    """A cityscapesscripts-like panoptic JSON: the 19 label-id categories, 3 images, areas on every segment."""
    segments = FAKE_SEGMENTS if segments is None else segments
    cats = [dict(id=i, name=n, isthing=int(i >= 24), supercategory='x', color=[i, i, i])
            for i, n in CITYSCAPES_CATEGORY_NAMES.items()]
    images, anns = [], []
    for img_id, segs in segments.items():
        name = f'city_{img_id:06d}_000019'
        images.append(dict(id=name, file_name=f'{name}_leftImg8bit.png', height=6, width=8))
        anns.append(dict(image_id=name, file_name=f'{name}_gtFine_panoptic.png', segments_info=[
            dict(id=sid, category_id=cat, area=area, bbox=[0, 0, 1, 1], iscrowd=int(sid < 1000 and cat >= 24))
            for sid, cat, area in segs]))
    return dict(images=images, annotations=anns, categories=cats, info=dict(note='kept as is'))


def _kept(doc: dict) -> list[list[int]]:
    return [[s['id'] for s in a['segments_info']] for a in doc['annotations']]


def test_cityscapes_constants():
    assert CITYSCAPES_CATEGORY_IDS == (7, 8, 11, 12, 13, 17, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 31, 32, 33)
    assert CITYSCAPES_DELETE_ORDER == (24, 25, 26, 27, 28, 31, 32, 33)
    assert [CITYSCAPES_CATEGORY_NAMES[i] for i in CITYSCAPES_DELETE_ORDER] == [
        'person', 'rider', 'car', 'truck', 'bus', 'train', 'motorcycle', 'bicycle']
    assert config_tag(0) == '000' and config_tag(8) == '008'


@pytest.mark.parametrize('spec,expected', [
    ('0-8', list(range(9))), ('0,3,8', [0, 3, 8]), ('2-4,8', [2, 3, 4, 8]), (' 8 , 0 ', [0, 8]), ('5', [5]),
    ('3-3', [3])])
def test_parse_config_list(spec, expected):
    assert parse_config_list(spec) == expected


@pytest.mark.parametrize('spec,needle', [
    ('9', 'configuration 9 in \'9\' is outside 0..8'), ('0-9', 'configuration 9'), ('x', "'x' in 'x' is not a number"),
    ('', 'empty'), ('4-2', 'runs backwards'), ('0-4,3', 'configuration 3 is listed twice'), ('-1', "'-1'"),
    ('1,,2', "'' in '1,,2'")])
def test_parse_config_list_errors(spec, needle):
    with pytest.raises(ValueError, match='--configs') as info:
        parse_config_list(spec)
    assert needle in str(info.value)


def test_parse_config_list_custom_max():
    assert parse_config_list('0-6', 6) == list(range(7))
    with pytest.raises(ValueError, match='outside 0..6'):
        parse_config_list('7', 6)


def test_deleted_ids_and_names():
    assert deleted_ids(0) == ()
    assert deleted_ids(3) == (24, 25, 26)
    assert deleted_ids(8) == CITYSCAPES_DELETE_ORDER
    assert deleted_ids(2, (1, 2, 3)) == (1, 2)
    for bad in (9, -1, True, 1.0):
        with pytest.raises(ValueError, match='outside 0..8'):
            deleted_ids(bad)
    cats = fake_cityscapes()['categories']
    assert deleted_class_names(0, cats) == []
    assert deleted_class_names(6, cats) == ['person', 'rider', 'car', 'truck', 'bus', 'train']
    with pytest.raises(ValueError, match=r'my.json: delete-order id\(s\) \[99\]'):
        deleted_class_names(1, cats, order=(99,), where='my.json')


@pytest.mark.parametrize('n', range(9))
def test_config_n_keeps_exactly_the_other_segments(n):
    raw = fake_cityscapes()
    before = copy.deepcopy(raw)
    new, summary = delete_segments(raw, deleted_ids(n), 'train.json')
    assert raw == before  # the input is not modified
    gone = set(CITYSCAPES_DELETE_ORDER[:n])
    expected = [[sid for sid, cat, _ in segs if cat not in gone] for segs in FAKE_SEGMENTS.values()]
    assert _kept(new) == expected
    # everything but segments_info is identical; kept segments are unchanged dicts, in order
    assert new['categories'] == raw['categories'] and new['images'] == raw['images'] and new['info'] == raw['info']
    assert set(new) == set(raw)
    for a_new, a_old in zip(new['annotations'], raw['annotations']):
        assert {k: v for k, v in a_new.items() if k != 'segments_info'} == {
            k: v for k, v in a_old.items() if k != 'segments_info'}
        assert a_new['segments_info'] == [s for s in a_old['segments_info'] if s['category_id'] not in gone]
    assert list(summary) == list(CITYSCAPES_DELETE_ORDER[:n])


def test_summary_numbers():
    _, summary = delete_segments(fake_cityscapes(), deleted_ids(8), 'train.json')
    assert summary[24] == dict(name='person', segments=3, pixels=40 + 60 + 33)  # the crowd segment counts too
    assert summary[25] == dict(name='rider', segments=1, pixels=15)
    assert summary[26] == dict(name='car', segments=1, pixels=200)
    assert summary[33] == dict(name='bicycle', segments=3, pixels=25 + 20 + 22)
    assert sum(c['segments'] for c in summary.values()) == 12
    assert sum(c['pixels'] for c in summary.values()) == 133 + 15 + 200 + 120 + 500 + 800 + 30 + 67


def test_deleted_class_without_segments_is_reported_with_zero():
    raw = fake_cityscapes({0: [(7, 7, 10)]})
    new, summary = delete_segments(raw, deleted_ids(2), 'train.json')
    assert summary == {24: dict(name='person', segments=0, pixels=0), 25: dict(name='rider', segments=0, pixels=0)}
    assert _kept(new) == [[7]]


def test_missing_area_names_file_and_record():
    raw = fake_cityscapes()
    del raw['annotations'][1]['segments_info'][2]['area']  # rider 25000
    with pytest.raises(ValueError) as info:
        delete_segments(raw, deleted_ids(2), 'data/train.json')
    msg = str(info.value)
    assert 'data/train.json' in msg and 'annotations[1].segments_info[2]' in msg and "'area'" in msg
    assert 'city_000001_000019' in msg
    delete_segments(raw, deleted_ids(1), 'data/train.json')  # a kept segment needs no area


@pytest.mark.parametrize('mutate,needle', [
    (lambda d: d['annotations'][0]['segments_info'][0].update(category_id=99), 'category_id 99 is not in categories'),
    (lambda d: d['annotations'][2].pop('segments_info'), "annotations[2] has no 'segments_info'"),
    (lambda d: d['annotations'][0]['segments_info'][1].pop('category_id'), "segments_info[1] (image"),
    (lambda d: d.pop('annotations'), "field 'annotations'"),
])
def test_delete_segments_bad_json(mutate, needle):
    raw = fake_cityscapes()
    mutate(raw)
    with pytest.raises(ValueError) as info:
        delete_segments(raw, deleted_ids(3), 'x/train.json')
    assert needle in str(info.value) and 'x/train.json' in str(info.value)


def test_delete_unknown_category():
    with pytest.raises(ValueError, match=r'x.json: deleted category id\(s\) \[5\]'):
        delete_segments(fake_cityscapes(), [5], 'x.json')


def test_check_categories():
    raw = fake_cityscapes()
    check_categories(raw, CITYSCAPES_CATEGORY_IDS, 'c.json')
    coco_like = json.loads(json.dumps(raw))
    coco_like['categories'] = coco_like['categories'][:-1] + [dict(id=90, name='toothbrush')]
    with pytest.raises(ValueError) as info:
        check_categories(coco_like, CITYSCAPES_CATEGORY_IDS, 'data/coco.json')
    msg = str(info.value)
    assert msg.startswith('data/coco.json: not a Cityscapes panoptic JSON')
    assert r'unknown category id(s) [90]' in msg and 'missing category id(s) [33]' in msg
    # exact=False (custom delete order): extra categories are fine, missing delete-order ids are not
    check_categories(raw, [24, 25], 'c.json', exact=False)
    with pytest.raises(ValueError, match=r"c.json: .*missing category id\(s\) \[99\]"):
        check_categories(raw, [24, 99], 'c.json', exact=False)
    with pytest.raises(ValueError, match="c.json: not a COCO panoptic JSON"):
        check_categories({'images': []}, CITYSCAPES_CATEGORY_IDS, 'c.json')
