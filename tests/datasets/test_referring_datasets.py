"""RefCocoDataset: grouping, texts, masks through the transforms into ReferringSegMetric, bad records."""
import json
import pickle

import numpy as np
import pytest
import torch
from mmengine.registry import init_default_scope
from PIL import Image
from pycocotools import mask as mask_util

from ovseg.datasets import RefCocoDataset
from ovseg.datasets.referring import ReferringRecordError, segmentation_rle
from ovseg.evaluation.metrics import ReferringSegMetric
from ovseg.registry import DATASETS
from ovseg.utils.plain_pickle import UnsafePickleError

PIPE = [dict(type='LoadImage'), dict(type='LoadReferringAnnotations'), dict(type='PackReferringInputs')]
SIZES = {1: (20, 30), 2: (16, 24), 3: (18, 18)}  # image id -> (h, w)


@pytest.fixture(autouse=True)
def _scope():
    init_default_scope('ovseg')


def _poly_mask(poly, h, w):
    return mask_util.decode(mask_util.merge(mask_util.frPyObjects([poly], h, w))).astype(bool)


def _write_refer(root, refs_edit=None, anns_edit=None, protocol=2):
    """3 images (2 PNG, 1 JPG), 5 annotations (one iscrowd RLE), refs over train / val / testA."""
    (root / 'refcoco').mkdir(parents=True)
    imgdir = root / 'coco2014' / 'train2014'
    imgdir.mkdir(parents=True)
    images = []
    for iid, (h, w) in SIZES.items():
        name = f'COCO_train2014_{iid:012d}.' + ('jpg' if iid == 3 else 'png')
        Image.fromarray(np.full((h, w, 3), 40 * iid, np.uint8)).save(imgdir / name)
        images.append({'id': iid, 'file_name': name, 'height': h, 'width': w})
    crowd = np.zeros((18, 18), np.uint8)
    crowd[3:9, 5:15] = 1
    crowd_rle = mask_util.encode(np.asfortranarray(crowd))
    anns = [
        {'id': 11, 'image_id': 1, 'category_id': 1, 'segmentation': [[2, 2, 12, 2, 12, 10, 2, 10]]},
        {'id': 12, 'image_id': 1, 'category_id': 1, 'segmentation': [[15, 5, 28, 5, 20, 18]]},
        {'id': 21, 'image_id': 2, 'category_id': 2, 'segmentation': [[1, 1, 8, 1, 8, 8, 1, 8],
                                                                     [10, 10, 20, 10, 20, 14, 10, 14]]},
        {'id': 31, 'image_id': 3, 'category_id': 1, 'iscrowd': 1,  # uncompressed RLE, as COCO crowd regions
         'segmentation': {'size': [18, 18], 'counts': _uncompressed(crowd)}},
        {'id': 32, 'image_id': 3, 'category_id': 2,
         'segmentation': {'size': [18, 18], 'counts': crowd_rle['counts'].decode()}},
    ]
    refs = [
        dict(ref_id=1, ann_id=11, image_id=1, split='val', sentences=[
            dict(raw='The LEFT box', sent='the left box', sent_id=101), dict(raw='Box', sent='box', sent_id=102)]),
        dict(ref_id=2, ann_id=12, image_id=1, split='val', sentences=[dict(raw='Triangle', sent='triangle',
                                                                            sent_id=103)]),
        dict(ref_id=3, ann_id=21, image_id=2, split='train', sentences=[dict(raw='Two Squares', sent='two squares',
                                                                              sent_id=104)]),
        dict(ref_id=4, ann_id=31, image_id=3, split='testA', sentences=[dict(raw='Crowd', sent='crowd',
                                                                             sent_id=105)]),
        dict(ref_id=5, ann_id=32, image_id=3, split='val', sentences=[dict(raw='Band', sent='band', sent_id=106)]),
    ]
    if refs_edit:
        refs_edit(refs)
    if anns_edit:
        anns_edit(anns)
    (root / 'refcoco' / 'instances.json').write_text(json.dumps({'images': images, 'annotations': anns,
                                                                 'categories': [{'id': 1, 'name': 'a'}]}))
    with open(root / 'refcoco' / 'refs(unc).p', 'wb') as f:
        pickle.dump(refs, f, protocol=protocol)
    return anns


def _uncompressed(mask):
    flat = mask.ravel(order='F')
    counts, prev, run = [], 0, 0
    for v in flat:
        if v != prev:
            counts.append(run)
            run, prev = 0, v
        run += 1
    counts.append(run)
    return [int(c) for c in counts]


def test_eval_grouping_masks_and_metric(tmp_path):
    """test_mode: one sample per image with all its expressions ('sent'), GT masks equal the polygons / RLEs."""
    _write_refer(tmp_path)
    ds = RefCocoDataset(data_root=str(tmp_path), split='val', pipeline=PIPE, test_mode=True, check_files=True)
    assert len(ds) == 2
    s0 = ds[0]['data_samples']
    assert s0.expressions == ['the left box', 'box', 'triangle'] and s0.sent_ids == [101, 102, 103]
    assert s0.ref_ids == [1, 1, 2] and s0.ori_shape == (20, 30) and tuple(ds[0]['inputs'].shape) == (3, 20, 30)
    gt = s0.gt_masks
    assert gt.dtype == torch.bool and tuple(gt.shape) == (3, 20, 30)
    expected = _poly_mask([2, 2, 12, 2, 12, 10, 2, 10], 20, 30)
    assert np.array_equal(gt[0].numpy(), expected) and np.array_equal(gt[1].numpy(), expected)
    assert np.array_equal(gt[2].numpy(), _poly_mask([15, 5, 28, 5, 20, 18], 20, 30))
    s1 = ds[1]['data_samples']
    assert s1.expressions == ['band'] and int(s1.gt_masks.sum()) == 60 and s1.img_path.endswith('.jpg')

    metric = ReferringSegMetric()
    samples = []
    for i in range(len(ds)):
        d = ds[i]['data_samples']
        pred = d.gt_masks.clone()
        pred[0] = False  # first expression of each image predicted empty
        d.pred_masks = pred
        samples.append(d.to_dict())
    metric.process({}, samples)
    res = metric.compute_metrics(metric.results)
    total = sum(int(ds[i]['data_samples'].gt_masks.sum()) for i in range(2))
    missed = int(expected.sum()) + 60
    assert res['cIoU'] == pytest.approx(100 * (total - missed) / total)
    assert res['gIoU'] == pytest.approx(100 * 2 / 4, abs=1e-3)  # 4 expressions, 2 perfect, 2 empty


def test_training_grouping_sentence_raw_lower_and_splits(tmp_path):
    _write_refer(tmp_path)
    ds = RefCocoDataset(data_root=str(tmp_path), split='train', pipeline=PIPE)
    assert len(ds) == 1
    d = ds[0]['data_samples']
    assert d.expressions == ['two squares'] and d.sent_ids == [104]
    two = _poly_mask([1, 1, 8, 1, 8, 8, 1, 8], 16, 24) | _poly_mask([10, 10, 20, 10, 20, 14, 10, 14], 16, 24)
    assert np.array_equal(d.gt_masks[0].numpy(), two)  # several polygons = one object (union)
    val = RefCocoDataset(data_root=str(tmp_path), split='val', pipeline=PIPE)  # training defaults on val refs
    assert [val.get_data_info(i)['expressions'] for i in range(len(val))] == [
        ['the left box'], ['box'], ['triangle'], ['band']]
    crowd = RefCocoDataset(data_root=str(tmp_path), split='testA', pipeline=PIPE, test_mode=True, text='raw')
    c = crowd[0]['data_samples']
    assert c.expressions == ['Crowd'] and int(c.gt_masks.sum()) == 60  # uncompressed RLE decoded
    all_refs = RefCocoDataset(data_root=str(tmp_path), split=None, group='image', test_mode=True)
    assert [len(all_refs.get_data_info(i)['sent_ids']) for i in range(len(all_refs))] == [3, 1, 2]


def test_built_from_config_and_refs_json(tmp_path):
    _write_refer(tmp_path)
    refs = pickle.loads((tmp_path / 'refcoco' / 'refs(unc).p').read_bytes())
    (tmp_path / 'refcoco' / 'refs(mine).json').write_text(json.dumps(refs))
    ds = DATASETS.build(dict(type='RefCocoDataset', data_root=str(tmp_path), dataset='refcoco',
                             refs_file='refs(mine).json', split='val', test_mode=True))
    assert [ds.get_data_info(i)['sent_ids'] for i in range(len(ds))] == [[101, 102, 103], [106]]


def test_malicious_refs_pickle_is_refused(tmp_path):
    _write_refer(tmp_path)

    class Evil:
        def __reduce__(self):
            return (print, ('pwned',))

    (tmp_path / 'refcoco' / 'refs(unc).p').write_bytes(pickle.dumps([Evil()]))
    with pytest.raises(UnsafePickleError, match=r"refs\(unc\)\.p: refused to load 'builtins\.print'"):
        RefCocoDataset(data_root=str(tmp_path), split='val')


@pytest.mark.parametrize('edit, reason, pattern', [
    (lambda refs, anns: refs[1].update(ann_id=999), 'ann_id absent from instances',
     r"ref_id 2 \(ann_id 999, image_id 1\): ann_id 999 is not an annotation of .*instances\.json"),
    (lambda refs, anns: anns[1].update(segmentation=[[15, 5, 28, 5, 20, 40]]), 'polygon outside the image',
     r'ref_id 2 .*annotation 12: polygon 0 has vertex \(20, 40\) outside the 30x20 \(WxH\) image'),
    (lambda refs, anns: anns[1].update(segmentation=[[5, 5, 9, 5, 13, 5]]), 'empty mask',
     r'ref_id 2 .*annotation 12: the mask is empty'),
    (lambda refs, anns: anns[1].update(segmentation=[[5, 5, 9, 5]]), 'polygon with < 3 points',
     r'annotation 12: polygon 0 has 4 coordinates; a polygon needs at least 3'),
    (lambda refs, anns: refs[1]['sentences'][0].update(sent_id=101), 'duplicate sent_id',
     r'ref_id 2 .*sent_id 101 appears twice'),
])
def test_bad_records_raise_or_skip(tmp_path, edit, reason, pattern):
    refs_holder = {}

    def refs_edit(refs):
        refs_holder['refs'] = refs

    def anns_edit(anns):
        edit(refs_holder['refs'], anns)

    _write_refer(tmp_path, refs_edit, anns_edit)
    with pytest.raises(ReferringRecordError, match=pattern) as err:
        RefCocoDataset(data_root=str(tmp_path), split='val', test_mode=True)
    assert "refs(unc).p" in str(err.value)
    ds = RefCocoDataset(data_root=str(tmp_path), split='val', test_mode=True, on_bad_record='skip')
    assert ds.skipped == {reason: 1}
    assert sum(len(ds.get_data_info(i)['sent_ids']) for i in range(len(ds))) == 3  # 4 minus the bad one


def test_missing_image_with_check_files(tmp_path, capsys):
    _write_refer(tmp_path)
    (tmp_path / 'coco2014' / 'train2014' / 'COCO_train2014_000000000003.jpg').unlink()
    RefCocoDataset(data_root=str(tmp_path), split='val', test_mode=True)  # not checked by default
    with pytest.raises(ReferringRecordError, match=r'ref_id 5 .*image file not found: .*000000000003\.jpg'):
        RefCocoDataset(data_root=str(tmp_path), split='val', test_mode=True, check_files=True)
    ds = RefCocoDataset(data_root=str(tmp_path), split='val', test_mode=True, check_files=True,
                        on_bad_record='skip')
    assert ds.skipped == {'missing image file': 1} and len(ds) == 1


def test_rle_size_must_match_image(tmp_path):
    _write_refer(tmp_path)
    with pytest.raises(ReferringRecordError, match=r"RLE size \[18, 18\] \(H, W\) is not the image's \[20, 30\]"):
        segmentation_rle({'size': [18, 18], 'counts': _uncompressed(np.ones((18, 18), np.uint8))}, 20, 30, 'x')
    # an image file replaced by one of another size: the loader names the annotation file, sentence and image
    Image.fromarray(np.zeros((10, 10, 3), np.uint8)).save(tmp_path / 'coco2014/train2014/COCO_train2014_'
                                                          '000000000001.png')
    ds = RefCocoDataset(data_root=str(tmp_path), split='val', pipeline=PIPE, test_mode=True)
    with pytest.raises(ValueError, match=r"refs\(unc\)\.p: sent_id 101 has a 30x20 \(WxH\) mask but image .* is 10x10"):
        ds[0]


def test_sample_expressions_as_sa2va_training(tmp_path):
    """group='image' + SampleReferringExpressions(5): five (mask, text) pairs drawn with replacement, aligned."""
    _write_refer(tmp_path)
    pipe = [dict(type='LoadImage'), dict(type='SampleReferringExpressions', num=5),
            dict(type='LoadReferringAnnotations'), dict(type='PackReferringInputs')]
    ds = RefCocoDataset(data_root=str(tmp_path), split='val', group='image', pipeline=pipe)
    np.random.seed(0)
    d = ds[0]['data_samples']
    assert len(d.expressions) == 5 and tuple(d.gt_masks.shape) == (5, 20, 30)
    assert set(d.sent_ids) <= {101, 102, 103} and len(set(d.sent_ids)) > 1
    by_sent = {101: 'the left box', 102: 'box', 103: 'triangle'}
    tri = _poly_mask([15, 5, 28, 5, 20, 18], 20, 30)
    for sid, text, mask in zip(d.sent_ids, d.expressions, d.gt_masks.numpy()):
        assert by_sent[sid] == text and np.array_equal(mask, tri) == (sid == 103)
    no_repeat = RefCocoDataset(data_root=str(tmp_path), split='val', group='image', pipeline=[
        dict(type='SampleReferringExpressions', num=5, replace=False)])
    assert sorted(no_repeat[0]['sent_ids']) == [101, 102, 103]
