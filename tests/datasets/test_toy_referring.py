"""ToyScenes referring expressions: uniqueness rules, determinism, RefCOCO-style outputs, eval GT, trivial baselines."""
import json

import numpy as np
import pytest
from mmengine.registry import init_default_scope

from ovseg.datasets import ToyReferringDataset, ensure_toy_scenes
from ovseg.datasets.referring import decode_rle
from ovseg.datasets.toy_referring import (
    ToySegment,
    describe_segments,
    ensure_toy_referring,
    generate_toy_referring,
    main,
    toy_trivial_baselines,
)
from ovseg.evaluation.functional.referring_io import evaluate_refseg_files, load_refseg_gt

PARAMS = dict(num_train=6, num_val=8, size=(64, 64), seed=5)
PIPE = [dict(type='LoadImage'), dict(type='LoadReferringAnnotations'), dict(type='PackReferringInputs')]


@pytest.fixture(autouse=True)
def _scope():
    init_default_scope('ovseg')


@pytest.fixture(scope='module')
def toy(tmp_path_factory):
    root = ensure_toy_scenes(tmp_path_factory.mktemp('toyref') / 'toy', **PARAMS)
    meta = ensure_toy_referring(root)
    return root, meta


def test_expressions_single_out_one_segment():
    a = ToySegment(1, 'ball', True, cx=0.1, cy=0.5, area=0.06)
    b = ToySegment(2, 'ball', True, cx=0.9, cy=0.5, area=0.01)
    c = ToySegment(3, 'box', True, cx=0.5, cy=0.1, area=0.03)
    sky = ToySegment(4, 'sky', False, cx=0.5, cy=0.2, area=0.3)
    phrases, dropped = describe_segments([a, b, c, sky])
    assert phrases[1] == ['the large ball', 'the ball on the left', 'the red ball on the left', 'the large red ball',
                          'the object on the left', 'the large object']
    assert phrases[2] == ['the small ball', 'the ball on the right', 'the red ball on the right',
                          'the small red ball', 'the object on the right', 'the small object']
    assert phrases[3] == ['the box', 'the blue box', 'the box in the middle', 'the box at the top',
                          'the blue box in the middle', 'the object in the middle', 'the object at the top']
    assert phrases[4] == ['the sky', 'the blue sky']
    assert dropped == 4  # "the ball" and "the red ball", once per ball


def test_borderline_look_alikes_make_an_expression_ambiguous():
    left = ToySegment(1, 'star', True, cx=0.30, cy=0.5, area=0.03)
    near = ToySegment(2, 'star', True, cx=0.36, cy=0.5, area=0.03)  # middle, but within the margin of "left"
    phrases, _ = describe_segments([left, near], margin=0.05)
    assert 'the star on the left' not in phrases[1] and 'the star in the middle' not in phrases[2]
    phrases, _ = describe_segments([left, near], margin=0.0)
    assert 'the star on the left' in phrases[1] and 'the star in the middle' in phrases[2]


def test_generation_is_deterministic_and_consistent(toy, tmp_path):
    root, meta = toy
    folder = root / 'referring'
    again = generate_toy_referring(root, tmp_path / 'again')
    for name in ('refs(toy).json', 'instances.json', 'refseg_gt_val.json'):
        assert (folder / name).read_bytes() == (tmp_path / 'again' / name).read_bytes(), name
    assert again['counts'] == meta['counts']
    refs = json.loads((folder / 'refs(toy).json').read_text())
    c = meta['counts']
    assert c['refs'] == len(refs) > 10 and c['sentences'] == sum(len(r['sentences']) for r in refs)
    assert c['objects'] == c['refs'] + c['unreferable_objects'] and c['ambiguous_dropped'] > 0
    texts_per_image = {}
    for r in refs:
        assert 1 <= len(r['sentences']) <= 2
        for s in r['sentences']:
            assert s['sent'].startswith('the ') and s['raw'].lower() == s['sent']
            key = (r['image_id'], s['sent'])
            assert key not in texts_per_image, f'{key} refers to two objects'
            texts_per_image[key] = r['ref_id']
    with pytest.raises(ValueError, match='generated differently'):
        ensure_toy_referring(root, expressions_per_object=3)


def test_dataset_samples_and_eval_gt(toy):
    root, meta = toy
    ds = ToyReferringDataset(data_root=str(root), split='val', generate=False, pipeline=PIPE, test_mode=True)
    assert len(ds) == PARAMS['num_val']
    assert sum(len(ds.get_data_info(i)['sent_ids']) for i in range(len(ds))) == meta['per_split']['val']['sentences']
    instances = json.loads((root / 'referring' / 'instances.json').read_text())
    anns = {a['id']: a for a in instances['annotations']}
    d = ds[0]['data_samples']
    assert tuple(d.gt_masks.shape) == (len(d.expressions), 64, 64) and d.img_path.endswith('images/val/000000.png')
    for k, ann_id in enumerate(d.ann_ids):
        assert np.array_equal(d.gt_masks[k].numpy(), decode_rle(anns[ann_id]['segmentation']))
    train = ToyReferringDataset(data_root=str(root), split='train', generate=False)
    assert len(train) == meta['per_split']['train']['sentences']  # one expression per training sample
    gt_file = root / 'referring' / 'refseg_gt_val.json'
    gt = load_refseg_gt(gt_file)
    assert len(gt) == meta['per_split']['val']['sentences']
    pred = root.parent / 'pred.json'
    pred.write_text(json.dumps([{'sent_id': a['sent_id'], 'segmentation': a['segmentation']}
                                for a in json.loads(gt_file.read_text())['annotations']]))
    assert evaluate_refseg_files(gt_file, pred)['cIoU'] == pytest.approx(1.0)


def test_trivial_baselines(toy, capsys):
    root, meta = toy
    res = toy_trivial_baselines(root, 'val')
    print({k: {m: round(100 * v, 2) for m, v in r.items() if m != 'num_expressions'} for k, r in res.items()})
    refs = [r for r in json.loads((root / 'referring' / 'refs(toy).json').read_text()) if r['split'] == 'val']
    anns = {a['id']: a for a in json.loads((root / 'referring' / 'instances.json').read_text())['annotations']}
    gt_area = sum(anns[r['ann_id']]['area'] * len(r['sentences']) for r in refs)
    n = meta['per_split']['val']['sentences']
    whole = res['whole_image']
    assert whole['num_expressions'] == n
    assert whole['cIoU'] == pytest.approx(gt_area / (n * 64 * 64)) and whole['gIoU'] == pytest.approx(whole['cIoU'])
    assert res['largest_segment']['cIoU'] < 0.05  # the largest segment is a stuff band, never a referred thing
    assert whole['cIoU'] < res['largest_thing']['cIoU'] < 0.8 and 0 < res['largest_thing']['gIoU'] < 1


def test_cli_prints_counts_and_baselines(tmp_path, capsys):
    assert main([str(tmp_path / 'toy'), '--num-train', '2', '--num-val', '3']) == 0
    out = capsys.readouterr().out
    counts = json.loads(out.splitlines()[0])
    assert counts['per_split']['val']['refs'] > 0
    assert 'val baseline whole_image: cIoU' in out and 'val baseline largest_thing: cIoU' in out
