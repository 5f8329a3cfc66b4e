"""Sa2VAFinetuneDataset: Sa2VA's fine-tune JSON as referring samples; every bad record named or skipped-and-counted."""
import json

import numpy as np
import pytest
import torch
from mmengine.registry import init_default_scope
from PIL import Image
from pycocotools import mask as mask_util

from ovseg.datasets.referring import ReferringRecordError
from ovseg.registry import DATASETS
from projects.sa2va_sft.sa2va_sft import Sa2VAFinetuneDataset, normalize_finetune_text

PIPE = [dict(type='LoadImage'), dict(type='LoadReferringAnnotations'), dict(type='PackReferringInputs')]
DOG = [[2, 2, 10, 2, 10, 9, 2, 9]]
CAR = [[12, 3, 22, 3, 22, 8, 12, 8], [14, 10, 20, 10, 17, 14]]  # two polygons: one object


@pytest.fixture(autouse=True)
def _scope():
    init_default_scope('ovseg')


def _poly(polys, h, w):
    return mask_util.decode(mask_util.merge(mask_util.frPyObjects(polys, h, w))).astype(bool)


def _write(root, edit=None):
    (root / 'images').mkdir(parents=True)
    Image.fromarray(np.full((16, 24, 3), 90, np.uint8)).save(root / 'images' / 'a.png')
    Image.fromarray(np.full((12, 12, 3), 30, np.uint8)).save(root / 'images' / 'b.jpg')
    items = json.loads(json.dumps([{'image': 'a.png', 'mask': [DOG, CAR], 'text': ['The Dog.', 'red car']},
                                   {'image': 'b.jpg', 'mask': [[[1, 1, 11, 1, 6, 11]]], 'text': ['A TENT']}]))
    if edit:
        edit(items)
    (root / 'annotations.json').write_text(json.dumps(items))


def test_samples_match_sa2va_reading(tmp_path):
    _write(tmp_path)
    ds = DATASETS.build(dict(type='Sa2VAFinetuneDataset', data_root=str(tmp_path), pipeline=PIPE))
    assert len(ds) == 2
    a = ds[0]['data_samples']
    assert a.expressions == ['the dog', 'red car'] and a.sent_ids == [0, 1] and a.img_id == 0
    assert a.gt_masks.dtype == torch.bool and tuple(a.gt_masks.shape) == (2, 16, 24)
    assert np.array_equal(a.gt_masks[0].numpy(), _poly(DOG, 16, 24))
    assert np.array_equal(a.gt_masks[1].numpy(), _poly(CAR[:1], 16, 24) | _poly(CAR[1:], 16, 24))
    b = ds[1]['data_samples']
    assert b.expressions == ['a tent'] and b.sent_ids == [2] and tuple(b.gt_masks.shape) == (1, 12, 12)
    per_object = Sa2VAFinetuneDataset(data_root=str(tmp_path), group='sentence', normalize_text=False)
    assert [per_object.get_data_info(i)['expressions'] for i in range(3)] == [['The Dog.'], ['red car'], ['A TENT']]
    assert normalize_finetune_text('  Big Tree . ') == 'big tree'


@pytest.mark.parametrize('edit, reason, pattern', [
    (lambda items: items[0]['text'].pop(), 'masks != texts',
     r"record 0 \(image 'a\.png'\): 2 masks but 1 texts"),
    (lambda items: items[0]['mask'][1].append([3, 3, 5, 5]), 'polygon with < 3 points',
     r"record 0 \(image 'a\.png'\): object 1: polygon 2 has 4 coordinates; a polygon needs at least 3"),
    (lambda items: items[0]['mask'][0][0].extend([30, 9]), 'polygon outside the image',
     r"record 0 \(image 'a\.png'\): object 0: polygon 0 has vertex \(30, 9\) outside the 24x16 \(WxH\) image"),
    (lambda items: items[1].update(image='missing.jpg'), 'missing image',
     r"record 1 \(image 'missing\.jpg'\): image file not found: .*images/missing\.jpg"),
    (lambda items: items[1]['mask'].__setitem__(0, [[1, 1, 5, 1, 9, 1]]), 'empty mask',
     r"record 1 \(image 'b\.jpg'\): object 0: the mask is empty"),
    (lambda items: items[1]['text'].__setitem__(0, ' '), 'bad text',
     r"record 1 \(image 'b\.jpg'\): object 0: text must be a non-empty string"),
    (lambda items: items[1]['mask'].__setitem__(0, [1, 1, 11, 1, 6, 11]), 'bad segmentation',
     r'object 0: mask is a flat list of numbers; an object is a list of polygons'),
    (lambda items: items[1].pop('text'), 'missing field', r"record 1: missing field\(s\) \['text'\]"),
])
def test_bad_records_raise_or_skip(tmp_path, edit, reason, pattern):
    _write(tmp_path, edit)
    with pytest.raises(ReferringRecordError, match=pattern) as err:
        Sa2VAFinetuneDataset(data_root=str(tmp_path))
    assert 'annotations.json' in str(err.value)
    ds = Sa2VAFinetuneDataset(data_root=str(tmp_path), on_bad_record='skip')
    assert ds.skipped == {reason: 1} and len(ds) == 1
    bad = 0 if 'record 0' in pattern else 1
    good = ds.get_data_info(0)
    assert good['img_id'] == 1 - bad
    # sent_ids stay those of the full file: skipping a record does not renumber the others
    assert good['sent_ids'] == ([2] if bad == 0 else [0, 1])


def test_file_level_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match=r'annotations\.json: no such file'):
        Sa2VAFinetuneDataset(data_root=str(tmp_path))
    (tmp_path / 'annotations.json').write_text('{"image": "a.png"}')
    with pytest.raises(ReferringRecordError, match=r'annotations\.json: expected a JSON list .*records.*got dict'):
        Sa2VAFinetuneDataset(data_root=str(tmp_path))
    (tmp_path / 'annotations.json').write_text('[{"image": "a.png", "mask": [], "text": []}]')
    with pytest.raises(ReferringRecordError, match=r'record 0 .*no object'):
        Sa2VAFinetuneDataset(data_root=str(tmp_path))
    with pytest.raises(ReferringRecordError, match=r'no usable record \(skipped: 1 no object\)'):
        Sa2VAFinetuneDataset(data_root=str(tmp_path), on_bad_record='skip')
