"""REFER (RefCOCO) reading: split rules, SEEM's grounding JSON, per-sentence RLE GT, bad files, the converter CLI."""
import json
import pickle
import subprocess
import sys

import numpy as np
import pytest
from pycocotools import mask as mask_util

from ovseg.datasets.refer import (
    ReferFormatError,
    grounding_refseg_gt,
    load_refs,
    refer_grounding_json,
    select_refs,
)
from ovseg.evaluation.functional.referring_io import evaluate_refseg_files
from tests.conftest import REPO_ROOT

SPLITS = ['train', 'testA', 'testB', 'val']


def _fake_refer(root, protocol=2):
    """Two images, four polygon annotations, one ref per annotation with 1–2 sentences."""
    folder = root / 'refcoco'
    folder.mkdir(parents=True)
    images = [{'id': 1, 'file_name': 'COCO_train2014_000000000001.jpg', 'height': 20, 'width': 30},
              {'id': 2, 'file_name': 'COCO_train2014_000000000002.jpg', 'height': 16, 'width': 16}]
    polys = [[2, 2, 12, 2, 12, 10, 2, 10], [15, 5, 28, 5, 20, 18], [1, 1, 8, 1, 8, 8, 1, 8], [9, 9, 15, 9, 15, 15]]
    anns = [{'id': 10 + k, 'image_id': 1 if k < 2 else 2, 'category_id': 1, 'iscrowd': 0, 'area': 1.0,
             'bbox': [0, 0, 1, 1], 'segmentation': [p]} for k, p in enumerate(polys)]
    (folder / 'instances.json').write_text(json.dumps({'images': images, 'annotations': anns,
                                                       'categories': [{'id': 1, 'name': 'person'}]}))
    refs = [{'ref_id': k, 'ann_id': 10 + k, 'image_id': anns[k]['image_id'], 'category_id': 1, 'split': SPLITS[k],
             'file_name': f'x_{k}.jpg', 'sent_ids': [100 + 2 * k],
             'sentences': [{'raw': f'Thing {k}', 'sent': f'thing {k}', 'sent_id': 100 + 2 * k, 'tokens': []}]
             + ([{'raw': 'other', 'sent': 'other', 'sent_id': 101 + 2 * k, 'tokens': []}] if k % 2 else [])}
            for k in range(4)]
    (folder / 'refs(unc).p').write_bytes(pickle.dumps(refs, protocol=protocol))
    return folder, refs, json.loads((folder / 'instances.json').read_text())


def test_split_rules_match_refer(tmp_path):
    _, refs, _ = _fake_refer(tmp_path)
    assert [r['ref_id'] for r in select_refs(refs, 'testA')] == [1]
    assert [r['ref_id'] for r in select_refs(refs, 'test')] == [1, 2]
    assert [r['ref_id'] for r in select_refs(refs, 'val')] == [3]
    assert len(select_refs(refs, None)) == 4


def test_grounding_json_and_rle_gt(tmp_path):
    folder, _, instances = _fake_refer(tmp_path)
    refs = load_refs(folder / 'refs(unc).p')
    g = refer_grounding_json(refs, instances, 'test')
    assert [a['ref_id'] for a in g['annotations']] == [1, 2] and [im['id'] for im in g['images']] == [1, 2]
    assert g['annotations'][0]['sent_ids'] == [102, 103] and g['annotations'][0]['segmentation'] == \
        instances['annotations'][1]['segmentation']
    gt = grounding_refseg_gt(g)
    assert [a['sent_id'] for a in gt['annotations']] == [102, 103, 104]
    # the RLE equals pycocotools' own polygon rasterisation
    expected = mask_util.decode(mask_util.merge(mask_util.frPyObjects(instances['annotations'][1]['segmentation'],
                                                                      20, 30)))
    got = mask_util.decode({**gt['annotations'][0]['segmentation'],
                            'counts': gt['annotations'][0]['segmentation']['counts'].encode()})
    assert got.sum() > 50 and np.array_equal(got, expected)


def test_bad_refs_name_the_file_and_ref(tmp_path):
    folder, refs, instances = _fake_refer(tmp_path)
    refs[2]['ann_id'] = 999
    with pytest.raises(ReferFormatError, match=r"ref_id 2: ann_id 999 is not an annotation"):
        refer_grounding_json(refs, instances, None)
    refs[2]['ann_id'] = 12
    refs[3]['sentences'][0]['sent_id'] = 100
    with pytest.raises(ReferFormatError, match='sent_id 100 appears twice'):
        refer_grounding_json(refs, instances, None)
    bad = folder / 'refs(bad).p'
    bad.write_bytes(pickle.dumps([{'ref_id': 1}]))
    with pytest.raises(ReferFormatError, match=r"refs\(bad\)\.p: ref 0 \(ref_id 1\) lacks"):
        load_refs(bad)


def test_cli_round_trip_scores_perfect(tmp_path):
    _fake_refer(tmp_path)
    out, gt = tmp_path / 'g.json', tmp_path / 'gt.json'
    proc = subprocess.run([sys.executable, str(REPO_ROOT / 'tools/dataset_converters/refcoco_to_grounding.py'),
                           '--data-root', str(tmp_path), '--dataset', 'refcoco', '--split', 'train', '--out',
                           str(out), '--refseg-gt', str(gt)], capture_output=True, text=True, cwd=REPO_ROOT)
    assert proc.returncode == 0, proc.stderr
    assert '1 refs, 1 sentences, 1 images' in proc.stdout
    pred = tmp_path / 'pred.json'
    pred.write_text(json.dumps([{'sent_id': a['sent_id'], 'segmentation': a['segmentation']}
                                for a in json.loads(gt.read_text())['annotations']]))
    res = evaluate_refseg_files(gt, pred)
    assert res['cIoU'] == pytest.approx(1.0) and res['num_sentences'] == 1
