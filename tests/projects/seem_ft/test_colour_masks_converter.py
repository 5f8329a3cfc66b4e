"""tools/dataset_converters/colour_masks_to_seem.py: round trip on a tiny colour-mask fixture (PNG ids decode to the
JSON segments, areas and boxes match, PQ of GT against itself is 100, the core CocoPanopticDataset loads it, semantic
PNGs are contiguous + 255), sentences addressing, instance masks, and every bad-input error."""
import json

import cv2
import numpy as np
import pytest
from mmengine.registry import init_default_scope
from PIL import Image

from ovseg.datasets import CocoPanopticDataset
from ovseg.evaluation.functional.panoptic_io import pq_compute
from ovseg.structures.panoptic_format import read_panoptic_png
from projects.seem_ft.seem_ft.data import normalise_sentence, read_grounding_json
from tests.projects.seem_ft.seem_fixtures import (
    BALL,
    CLASS_TABLE,
    SENTENCES,
    SKY,
    colour_masks,
    convert_fixture,
    load_converter,
    write_inputs,
)


@pytest.fixture(autouse=True)
def _scope():
    init_default_scope('ovseg')


@pytest.fixture(scope='module')
def converted(tmp_path_factory):
    return convert_fixture(tmp_path_factory.mktemp('conv'))


def test_round_trip_panoptic_semantic(converted):
    doc = json.loads((converted / 'panoptic_train.json').read_text())
    assert [(c['id'], c['name'], c['isthing']) for c in doc['categories']] == [(1, 'sky', 0), (2, 'ball', 1),
                                                                                (3, 'grass', 0)]
    assert [im['file_name'] for im in doc['images']] == ['a.jpg', 'b.png']
    masks = colour_masks()
    table = {SKY: 0, BALL: 1, (70, 150, 50): 2}
    for ann in doc['annotations']:
        stem = ann['file_name'][:-4]
        pan = read_panoptic_png(converted / 'panoptic_train' / ann['file_name'])
        ids = {int(i): int(n) for i, n in zip(*np.unique(pan, return_counts=True))}
        segs = {s['id']: s for s in ann['segments_info']}
        assert set(ids) - {0} == set(segs)  # PNG ids decode to exactly the JSON segments
        for sid, seg in segs.items():
            m = pan == sid
            ys, xs = np.nonzero(m)
            assert seg['area'] == ids[sid] and seg['iscrowd'] == 0
            assert seg['bbox'] == [xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1]
            assert seg['category_id'] == sid // 1000
        rgb = masks[stem]
        assert np.array_equal(pan == 0, (rgb == 0).all(-1))  # void stays void
        sem = cv2.imread(str(converted / 'panoptic_semseg_train' / ann['file_name']), cv2.IMREAD_UNCHANGED)
        assert sem.dtype == np.uint8 and sem.ndim == 2
        expected = np.full(sem.shape, 255, np.uint8)
        for color, label in table.items():
            expected[(rgb == color).all(-1)] = label
        assert np.array_equal(sem, expected)
    a = doc['annotations'][0]['segments_info']
    assert [s['id'] for s in a] == [1000, 2001, 2002, 3000]  # two ball instances, raster order
    assert [s['area'] for s in a if s['category_id'] == 2] == [16, 36]
    # panopticapi-lite: GT against itself scores 100 (every id/area/category consistent)
    res = pq_compute(str(converted / 'panoptic_train.json'), str(converted / 'panoptic_train.json'),
                     str(converted / 'panoptic_train'), str(converted / 'panoptic_train'))
    assert res['All']['pq'] == pytest.approx(1.0) and res['All']['n'] == 3


def test_core_dataset_reads_output(converted):
    ds = CocoPanopticDataset(ann_file='panoptic_train.json', data_root=str(converted),
                             data_prefix=dict(img='../images', seg='panoptic_train', sem_seg='panoptic_semseg_train'),
                             pipeline=[dict(type='LoadImage'), dict(type='LoadPanopticAnnotations')])
    assert ds.metainfo['classes'] == ('sky', 'ball', 'grass') and ds.metainfo['is_thing'] == [False, True, False]
    for i in range(len(ds)):
        out = ds[i]
        sem = cv2.imread(out['sem_seg_map_path'], cv2.IMREAD_UNCHANGED)
        assert out['img'].shape[:2] == sem.shape  # the image / mask pairing survived
        assert np.array_equal(out['gt_seg_map'], sem.astype(np.int64))  # JSON + PNG give the semantic PNG


def test_grounding_output(converted):
    g = read_grounding_json(converted / 'grounding_train.json')
    got = {(a['image_id'], a['segment_id']): [s['raw'] for s in a['sentences']] for a in g['annotations']}
    assert got == {(1, 1000): ['The blue sky.'], (1, 2002): ['the ball at the bottom right', 'The lower ball'],
                   (1, 2001): ['the ball at the top left'], (2, 2001): ['the only ball']}
    sents = [s for a in g['annotations'] for s in a['sentences']]
    assert [s['sent_id'] for s in sents] == [1, 2, 3, 4, 5]
    assert all(s['sent'] == normalise_sentence(s['raw']) for s in sents)
    assert sents[0]['sent'] == 'the blue sky'
    assert all(a['category_id'] == a['segment_id'] // 1000 for a in g['annotations'])


def test_class_name_sentences_and_no_sentences(tmp_path):
    out = convert_fixture(tmp_path / 'n', extra=['--class-name-sentences'], sentences=None)
    g = read_grounding_json(out / 'grounding_train.json')
    assert len(g['annotations']) == 6 and {s['raw'] for a in g['annotations'] for s in a['sentences']} == {
        'sky', 'ball', 'grass'}
    out = convert_fixture(tmp_path / 'e', sentences=None)
    assert json.loads((out / 'grounding_train.json').read_text())['annotations'] == []


def test_instance_masks(tmp_path):
    conv = load_converter()
    argv = write_inputs(tmp_path, 'image,color_or_segment,sentence\na,220 40 40:7,ball seven\n')
    inst_dir = tmp_path / 'inst'
    inst_dir.mkdir()
    masks = colour_masks()
    a = np.zeros((20, 24), np.uint16)
    ball = (masks['a'] == BALL).all(-1)
    a[ball] = 3
    a[10:16, 14:20][ball[10:16, 14:20]] = 7
    a[2:4, 2:6] = 7  # instance 7 spans both blobs: ids, not connectivity, define instances
    b = np.zeros((16, 16), np.uint16)
    b[(masks['b'] == BALL).all(-1)] = 1
    cv2.imwrite(str(inst_dir / 'a.png'), a)
    cv2.imwrite(str(inst_dir / 'b.png'), b)
    assert conv.main(argv + ['--instance-masks', str(inst_dir)]) == 0
    doc = json.loads((tmp_path / 'out' / 'panoptic_train.json').read_text())
    balls = [s for s in doc['annotations'][0]['segments_info'] if s['category_id'] == 2]
    assert [s['area'] for s in balls] == [8, 8 + 36]  # id 3: lower half of blob 1; id 7: its upper half + blob 2
    g = read_grounding_json(tmp_path / 'out' / 'grounding_train.json')
    assert [(a['segment_id'], a['sentences'][0]['raw']) for a in g['annotations']] == [(2002, 'ball seven')]
    a[5, 5] = 0
    cv2.imwrite(str(inst_dir / 'a.png'), a)
    with pytest.raises(conv.ConversionError, match=r'a\.png: 1 pixels of thing colour \(220, 40, 40\).*instance id 0'):
        conv.main(argv + ['--instance-masks', str(inst_dir)])


def _edit_mask(root, stem, fn):
    path = root / 'masks' / f'{stem}.png'
    arr = np.array(Image.open(path))
    fn(arr)
    Image.fromarray(arr).save(path)


def _bad_colour(root):
    _edit_mask(root, 'b', lambda m: m.__setitem__((slice(0, 2), slice(0, 3)), (1, 2, 3)))


def _size_mismatch(root):
    Image.fromarray(np.zeros((10, 10, 3), np.uint8)).save(root / 'masks' / 'b.png')


@pytest.mark.parametrize('table, sentences, edit, match', [
    (CLASS_TABLE, None, _bad_colour, r"masks/b\.png: colour \(1, 2, 3\) \(#010203\) is not in the class table "
                                     r'\(6 pixels\)'),
    (CLASS_TABLE + '#78b4f0,sky2,0\n', None, None, r'classes\.csv line 5: colour \(120, 180, 240\) \(#78b4f0\) '
                                                    'already used on line 2'),
    (CLASS_TABLE + '1 1 1,ball,1\n', None, None, r"line 5: class name 'ball' already used on line 3"),
    ('color,name,isthing\n0 0 0,dark,0\n', None, None, r'line 2: colour \(0, 0, 0\) is the void colour'),
    ('color,name,isthing\n300 0 0,x,1\n', None, None, r"line 2: colour '300 0 0' is neither"),
    ('color,name,isthing\n1 2 3,x,maybe\n', None, None, r"line 2: isthing 'maybe'"),
    ('colour,name\n', None, None, r"needs the header columns \['color', 'name', 'isthing'\]"),
    (CLASS_TABLE, 'image,color_or_segment,sentence\nb,70 150 50,the grass\n', None,
     r"sentences\.csv line 2: colour \(70, 150, 50\) \(#469632, 'grass'\) is absent from .*masks/b\.png"),
    (CLASS_TABLE, 'image,color_or_segment,sentence\na,#dc2828,a ball\n', None,
     r"line 2: colour \(220, 40, 40\) \('ball'\) has 2 instances in .*a\.png; name one as '#dc2828:<k>' or by "
     r'segment id \[2001, 2002\]'),
    (CLASS_TABLE, 'image,color_or_segment,sentence\na,#dc2828:3,a ball\n', None, r'a\.png has no instance 3 of colour'),
    (CLASS_TABLE, 'image,color_or_segment,sentence\na,4001,x\n', None, r'line 2: segment 4001 is not in .*a\.png'),
    (CLASS_TABLE, 'image,color_or_segment,sentence\nzz,1 1 1,x\n', None, r"line 2: image 'zz' is not among"),
    (CLASS_TABLE, 'image,color_or_segment,sentence\na,9 9 9,x\n', None, r'colour \(9, 9, 9\).*not in the class table'),
    (CLASS_TABLE, 'image,color_or_segment,sentence\na,120 180 240,\n', None, 'line 2: empty sentence'),
    (CLASS_TABLE, None, _size_mismatch, r'masks/b\.png: mask is 10x10 \(WxH\) but image .*b\.png is 16x16'),
    (CLASS_TABLE, None, lambda r: (r / 'masks' / 'a.png').unlink(), r'images/a\.jpg: no mask .*masks/a\.png'),
    (CLASS_TABLE, None, lambda r: (r / 'images' / 'b.png').unlink(), r"mask\(s\) without an image .*\['b'\]"),
])
def test_bad_inputs(tmp_path, table, sentences, edit, match):
    conv = load_converter()
    argv = write_inputs(tmp_path, sentences, class_table=table)
    if edit is not None:
        edit(tmp_path)
    with pytest.raises(conv.ConversionError, match=match):
        conv.main(argv)


def test_cli_one_line_error(tmp_path, capsys):
    from ovseg.cli import run_tool
    conv = load_converter()
    argv = write_inputs(tmp_path, SENTENCES)
    _bad_colour(tmp_path)
    with pytest.raises(SystemExit) as exc:
        run_tool(conv.main, argv)
    assert exc.value.code == 1
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert 'error:' in err and 'is not in the class table (6 pixels)' in err and 'Traceback' not in err


def test_void_none_and_hex(tmp_path):
    conv = load_converter()
    argv = write_inputs(tmp_path, None, class_table=CLASS_TABLE + '0 0 0,unknown,stuff\n')
    assert conv.main(argv + ['--void-color', 'none']) == 0
    sem = cv2.imread(str(tmp_path / 'out' / 'panoptic_semseg_train' / 'a.png'), cv2.IMREAD_UNCHANGED)
    assert int((sem == 3).sum()) == 20 and not (sem == 255).any()
    assert conv.parse_color('#0A0b0C', 'x') == (10, 11, 12) and conv.parse_color('1, 2, 3', 'x') == (1, 2, 3)
