"""SEEM fine-tuning data: grounding JSON reader errors, PanopticGroundingDataset + LSJ → gt_groundings (masks equal
the gt_instances masks of the same segments), GroundingReferringDataset → ReferringSegMetric, SampleGroundings,
PackSEEMInputs (drops, flips) and the toy SEEM data (determinism, same expressions as ToyReferringDataset)."""
import json

import numpy as np
import pytest
import torch
from mmengine.registry import init_default_scope

from ovseg.datasets import ToyReferringDataset
from ovseg.datasets.sample_seed import SeededIndex
from ovseg.evaluation.metrics import ReferringSegMetric
from ovseg.registry import DATASETS, TRANSFORMS
from ovseg.structures.panoptic_format import read_panoptic_png
from projects.seem_ft.seem_ft.data import (
    SEEM_GROUNDING_MAX_LEN,
    GroundingFormatError,
    GroundingReferringDataset,
    PackSEEMInputs,
    PanopticGroundingDataset,
    SampleGroundings,
    ToySEEMDataset,
    ToySEEMReferringDataset,
    ensure_toy_seem,
    read_grounding_json,
    swap_left_right,
)
from tests.projects.seem_ft.seem_fixtures import convert_fixture

REF_PIPE = [dict(type='LoadImage'), dict(type='LoadReferringAnnotations'), dict(type='PackReferringInputs')]
TOY = dict(num_train=4, num_val=3)


@pytest.fixture(autouse=True)
def _scope():
    init_default_scope('ovseg')


@pytest.fixture(scope='module')
def data(tmp_path_factory):
    return convert_fixture(tmp_path_factory.mktemp('seem'))


def _kwargs(root, **kw):
    return dict(ann_file='panoptic_train.json', grounding_file='grounding_train.json', data_root=str(root),
                data_prefix=dict(img='../images', seg='panoptic_train'), **kw)


def _lsj(flip=0.0, max_num=SEEM_GROUNDING_MAX_LEN, fixed=True):
    return [dict(type='LoadImage'), dict(type='LoadPanopticAnnotations'), dict(type='RandomFlip', prob=flip),
            dict(type='RandomResizeScale', min_scale=0.8, max_scale=1.6, target_size=(16, 16)),
            dict(type='FixedSizeCrop', crop_size=(16, 16)),
            dict(type='SampleGroundings', max_num=max_num, fixed_num=fixed), dict(type='PackSEEMInputs')]


def test_schema_default_is_seem():
    assert SEEM_GROUNDING_MAX_LEN == 5  # focall_unicl_lang_v1.yaml MODEL.DECODER.GROUNDING.MAX_LEN


def test_panoptic_grounding_dataset_infos(data):
    ds = PanopticGroundingDataset(**_kwargs(data))
    assert DATASETS.get('PanopticGroundingDataset') is PanopticGroundingDataset
    assert ds.metainfo['classes'] == ('sky', 'ball', 'grass')  # from the data, not COCO
    g = ds.get_data_info(0)['groundings']
    assert [(x['segment_id'], x['category_id'], x['sentences']) for x in g] == [
        (1000, 0, ['the blue sky.']), (2001, 1, ['the ball at the top left']),
        (2002, 1, ['the ball at the bottom right', 'the lower ball'])]  # raw_lower: SEEM's training text
    assert g[2]['sent_ids'] == [3, 4]
    no_file = PanopticGroundingDataset(**{**_kwargs(data), 'grounding_file': None})
    assert all(no_file.get_data_info(i)['groundings'] == [] for i in range(len(no_file)))
    assert PanopticGroundingDataset(**_kwargs(data), text='sent').get_data_info(0)['groundings'][0]['sentences'] == [
        'the blue sky']


def test_lsj_groundings_equal_instances(data):
    ds = PanopticGroundingDataset(**_kwargs(data), pipeline=_lsj())
    seen = 0
    for i in range(len(ds)):
        for seed in range(4):
            out = ds[SeededIndex(i, (seed, seed + 1, seed + 2))]
            again = ds[SeededIndex(i, (seed, seed + 1, seed + 2))]
            s = out['data_samples']
            gg = s.gt_groundings
            assert gg.masks.dtype == torch.bool and tuple(gg.masks.shape[1:]) == tuple(out['inputs'].shape[1:])
            assert len(gg.texts) == len(gg) and gg.texts == again['data_samples'].gt_groundings.texts
            assert torch.equal(gg.masks, again['data_samples'].gt_groundings.masks)  # seeded per sample
            order = [seg['id'] for seg in s.segments_info if not seg['iscrowd']]
            for k, sid in enumerate(gg.segment_ids.tolist()):
                j = order.index(sid)
                assert torch.equal(gg.masks[k], s.gt_instances.masks[j])  # same segment, same transforms
                assert gg.labels[k] == s.gt_instances.labels[j] and gg.masks[k].any()
                seen += 1
            pan = s.gt_panoptic_seg.data[0]
            assert all(torch.equal(m, pan == sid) for m, sid in zip(gg.masks, gg.segment_ids.tolist()))
            assert s.groundings_dropped == 0  # SampleGroundings drew visible segments only
    assert seen > 0


def test_sample_groundings_counts_and_sentences():
    groundings = [dict(segment_id=i, category_id=0, sentences=[f's{i}a', f's{i}b'], sent_ids=[10 * i, 10 * i + 1])
                  for i in range(1, 8)]
    t = TRANSFORMS.build(dict(type='SampleGroundings'))
    counts = set()
    for seed in range(60):
        np.random.seed(seed)
        out = t.transform(dict(groundings=list(groundings)))['groundings']
        counts.add(len(out))
        assert len({g['segment_id'] for g in out}) == len(out)
        for g in out:
            assert len(g['sentences']) == 1 and g['sentences'][0][:-1] == f"s{g['segment_id']}"
            assert g['sent_ids'][0] == 10 * g['segment_id'] + (g['sentences'][0][-1] == 'b')
        np.random.seed(seed)
        assert t.transform(dict(groundings=list(groundings)))['groundings'] == out
    assert counts == {1, 2, 3, 4}  # SEEM: randint(1, MAX_LEN - 1)
    fixed = SampleGroundings(max_num=3, fixed_num=True)
    assert len(fixed.transform(dict(groundings=list(groundings)))['groundings']) == 2
    assert fixed.transform(dict(groundings=[]))['groundings'] == []
    pan = np.zeros((4, 4), np.int64)
    pan[0, 0] = 3
    only = SampleGroundings(fixed_num=True).transform(dict(groundings=list(groundings), gt_pan_id=pan))
    assert [g['segment_id'] for g in only['groundings']] == [3]
    with pytest.raises(ValueError, match='max_num'):
        SampleGroundings(max_num=1)


def _results(pan, groundings, flip=False):
    segs = [dict(id=int(i), category_id=int(i) // 10, iscrowd=0) for i in np.unique(pan) if i]
    return dict(img=np.zeros(pan.shape + (3,), np.uint8), gt_pan_id=pan, segments_info=segs, groundings=groundings,
                flip=flip, img_path='x.png')


def test_pack_seem_inputs_drops_and_flips():
    pan = np.zeros((6, 8), np.int64)
    pan[:3] = 11
    pan[3:, :4] = 22
    groundings = [dict(segment_id=11, category_id=1, sentences=['the LEFT thing', 'leftmost one']),
                  dict(segment_id=33, category_id=3, sentences=['cropped away']),
                  dict(segment_id=22, category_id=2, sentences=['Right box'])]
    out = PackSEEMInputs().transform(_results(pan, groundings))
    s = out['data_samples']
    gg = s.gt_groundings
    assert gg.texts == ['the LEFT thing', 'leftmost one', 'Right box']
    assert gg.segment_ids.tolist() == [11, 11, 22] and gg.labels.tolist() == [1, 1, 2]
    assert gg.hashes.tolist() == [11, 11, 22] and gg.metainfo['mode'] == 'text'
    assert torch.equal(gg.masks[0], torch.from_numpy(pan == 11))
    assert torch.equal(gg.masks[2], torch.from_numpy(pan == 22))
    assert s.groundings_dropped == 1 and len(s.gt_instances) == 2
    flipped = PackSEEMInputs().transform(_results(pan, groundings, flip=True))['data_samples'].gt_groundings
    assert flipped.texts == ['the RIGHT thing', 'rightmost one', 'Left box']
    kept = PackSEEMInputs(on_flip='keep').transform(_results(pan, groundings, flip=True))
    assert kept['data_samples'].gt_groundings.texts == gg.texts
    with pytest.raises(ValueError, match="x.png' was flipped"):
        PackSEEMInputs(on_flip='error').transform(_results(pan, groundings, flip=True))
    empty = PackSEEMInputs().transform(_results(pan, []))['data_samples']
    assert empty.gt_groundings.masks.shape == (0, 6, 8) and empty.gt_groundings.texts == []
    assert empty.groundings_dropped == 0
    with pytest.raises(KeyError, match='gt_pan_id'):
        PackSEEMInputs().transform(dict(img=np.zeros((2, 2, 3), np.uint8), groundings=groundings[:1]))
    assert swap_left_right('Left of the right-hand LEFT') == 'Right of the left-hand RIGHT'
    assert swap_left_right('leftover lefty') == 'leftover lefty'


def test_grounding_referring_metric_perfect(data):
    ds = GroundingReferringDataset(**_kwargs(data), test_mode=True, pipeline=REF_PIPE)
    assert ds.metainfo['task'] == 'referring_segmentation' and len(ds) == 2
    metric = ReferringSegMetric()
    samples = []
    for i in range(len(ds)):
        d = ds[i]['data_samples']
        pan = read_panoptic_png(d.seg_map_path)
        assert tuple(d.gt_masks.shape[1:]) == pan.shape == tuple(d.ori_shape)
        for mask, sid in zip(d.gt_masks, d.ann_ids):
            assert np.array_equal(mask.numpy(), pan == sid)
        d.pred_masks = d.gt_masks.clone()
        samples.append(d.to_dict())
    s0 = ds[0]['data_samples']
    assert s0.expressions == ['the blue sky', 'the ball at the top left', 'the ball at the bottom right',
                              'the lower ball']  # 'sent' in test mode
    assert s0.sent_ids == [1, 2, 3, 4] and s0.ann_ids == [1000, 2001, 2002, 2002] and s0.ref_ids == [1, 2, 3, 3]
    metric.process({}, samples)
    res = metric.compute_metrics(metric.results)
    assert res['cIoU'] == pytest.approx(100.0) and res['gIoU'] == pytest.approx(100.0)
    samples[0]['pred_masks'] = torch.zeros_like(samples[0]['pred_masks'])
    metric = ReferringSegMetric()
    metric.process({}, samples)
    assert metric.compute_metrics(metric.results)['cIoU'] < 100
    per_sentence = GroundingReferringDataset(**_kwargs(data), group='sentence')
    assert len(per_sentence) == 5 and per_sentence.get_data_info(0)['expressions'] == ['the blue sky.']


def _write_grounding(data, tmp_path, edit):
    doc = json.loads((data / 'grounding_train.json').read_text())
    edit(doc)
    path = tmp_path / 'g.json'
    path.write_text(json.dumps(doc))
    return str(path)


def _ann(doc, k=0):
    return doc['annotations'][k]


@pytest.mark.parametrize('edit, match', [
    (lambda d: _ann(d).update(segment_id=4001),
     r"g\.json: annotation 1 \(image 1, segment 4001\): segment 4001 is not in the segments_info of image 1 "
     r"\(panoptic PNG '.*panoptic_train/a\.png'\)"),
    (lambda d: _ann(d).update(image_id=9),
     r"g\.json: annotations\[0\] \(id 1, image 9, segment 1000\): image 9 is not in 'images'"),
    (lambda d: (d['images'].append(dict(id=9, file_name='z.jpg', height=1, width=1)), _ann(d).update(image_id=9)),
     r'annotation 1 \(image 9, segment 1000\): image 9 is not annotated in the panoptic JSON'),
    (lambda d: _ann(d).update(category_id=2), r"annotation 1 \(image 1, segment 1000\): category_id 2 is not the "
                                              "segment's category 1"),
    (lambda d: _ann(d).update(sentences=[]), r'annotations\[0\] \(id 1, image 1, segment 1000\): has no sentences'),
    (lambda d: _ann(d, 1)['sentences'][0].update(sent_id=1), r'sent_id 1 is duplicated'),
    (lambda d: _ann(d)['sentences'][0].update(raw='  '), r'sent_id 1 has an empty sentence'),
    (lambda d: _ann(d, 1).update(id=1), r'annotations\[1\] \(id 1, image 1, segment 2001\): id 1 is duplicated'),
    (lambda d: _ann(d).update(segment_id=0), 'segment_id must be a positive integer'),
    (lambda d: d['images'][0].update(file_name='other.jpg'),
     r"file_name 'other\.jpg' is not the panoptic image 'a\.jpg' \(do the grounding and panoptic JSONs belong"),
    (lambda d: d['images'][0].update(height=99), 'height 99 differs from the panoptic'),
    (lambda d: d.pop('annotations'), "missing or non-list field 'annotations'"),
])
def test_grounding_errors(data, tmp_path, edit, match):
    path = _write_grounding(data, tmp_path, edit)
    with pytest.raises(GroundingFormatError, match=match):
        PanopticGroundingDataset(**{**_kwargs(data), 'grounding_file': path})


def test_grounding_skip_and_empty_mask(data, tmp_path):
    path = _write_grounding(data, tmp_path, lambda d: _ann(d).update(segment_id=4001))
    ds = PanopticGroundingDataset(**{**_kwargs(data), 'grounding_file': path}, on_bad_record='skip')
    assert ds.skipped == {'segment absent from panoptic JSON': 1}
    assert [g['segment_id'] for g in ds.get_data_info(0)['groundings']] == [2001, 2002]
    # a segment listed in the JSON but absent from the PNG: no pixel to refer to
    pan_json = json.loads((data / 'panoptic_train.json').read_text())
    pan_json['annotations'][0]['segments_info'].append(dict(id=2003, category_id=2, iscrowd=0, area=0,
                                                            bbox=[0, 0, 0, 0]))
    (tmp_path / 'p.json').write_text(json.dumps(pan_json))
    grounding = _write_grounding(data, tmp_path, lambda d: _ann(d).update(segment_id=2003, category_id=2))
    kw = dict(_kwargs(data), ann_file=str(tmp_path / 'p.json'), grounding_file=grounding)
    with pytest.raises(GroundingFormatError, match=r'segment 2003\): the segment has no pixel in .*a\.png'):
        GroundingReferringDataset(**kw, test_mode=True)
    assert GroundingReferringDataset(**kw, test_mode=True, on_bad_record='skip').skipped == {'empty mask': 1}
    with pytest.raises(ValueError, match='grounding_file'):
        GroundingReferringDataset(**{**_kwargs(data), 'grounding_file': None})


def test_toy_seem_deterministic_and_shared_with_toy_referring(tmp_path):
    metas = [ensure_toy_seem(tmp_path / name, generate=TOY) for name in ('a', 'b')]
    assert metas[0] == metas[1] and metas[0]['counts']['val']['sentences'] > 0
    for split in ('train', 'val'):
        a = (tmp_path / 'a' / 'seem' / f'grounding_{split}.json').read_bytes()
        assert a == (tmp_path / 'b' / 'seem' / f'grounding_{split}.json').read_bytes()
    assert ensure_toy_seem(tmp_path / 'a', generate=TOY) == metas[0]  # reused, not regenerated
    with pytest.raises(ValueError, match='generated differently'):
        ensure_toy_seem(tmp_path / 'a', generate=TOY, referring=dict(expressions_per_object=3))
    root = str(tmp_path / 'a')
    seem = ToySEEMReferringDataset(root, split='val', generate=TOY, test_mode=True, pipeline=REF_PIPE)
    refer = ToyReferringDataset(root, split='val', generate=TOY, test_mode=True, pipeline=REF_PIPE)
    assert len(seem) == len(refer)
    for i in range(len(seem)):
        s, r = seem[i]['data_samples'], refer[i]['data_samples']
        assert s.expressions == r.expressions and s.sent_ids == r.sent_ids and s.img_path == r.img_path
        assert torch.equal(s.gt_masks, r.gt_masks)  # same masks through the panoptic PNG
    train = ToySEEMDataset(root, split='train', generate=TOY, pipeline=_lsj(flip=0.5, fixed=False))
    assert train.metainfo['classes'][0] == 'ball'
    grounded = read_grounding_json(tmp_path / 'a' / 'seem' / 'grounding_train.json')
    assert sum(len(train.get_data_info(i)['groundings']) for i in range(len(train))) == len(grounded['annotations'])
    out = train[SeededIndex(0, (1, 2, 3))]['data_samples'].gt_groundings
    assert 1 <= len(out) <= 4 and all(isinstance(t, str) and t for t in out.texts)
