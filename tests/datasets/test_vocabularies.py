import pytest

from ovseg.datasets import available_vocabularies, load_category_meta, load_vocabulary

EXPECTED = dict(coco_panoptic=133, ade20k_150=150, ade20k_847=847, pascal_context_59=59,
                pascal_context_459=459,
                pascal_voc_20=20, pascal_voc_21=21, cityscapes=19, mapillary_vistas=65, toy_scenes=11)


@pytest.mark.parametrize('name,count', sorted(EXPECTED.items()))
def test_builtin_sizes(name, count):
    vocab = load_vocabulary(name)
    assert len(vocab) == count
    assert all(syns and all(s.strip() == s and s for s in syns) for syns in vocab)


def test_known_entries():
    assert load_vocabulary('coco_panoptic')[0][:3] == ['person', 'child', 'girl']
    assert load_vocabulary('cityscapes')[0] == ['road', 'railroad']
    assert load_vocabulary('pascal_voc_21')[0][0] == 'background'
    assert load_vocabulary('pascal_voc_20')[0][0] == 'aeroplane'
    assert set(EXPECTED) <= set(available_vocabularies())


def test_category_meta_facts():
    coco = load_category_meta('coco_panoptic')
    assert len(coco) == 133 and sum(c['isthing'] for c in coco) == 80
    assert coco[0] == dict(id=1, name='person', isthing=1, color=[220, 20, 60])
    assert coco[-1]['id'] == 200
    cs = load_category_meta('cityscapes')
    assert [c['id'] for c in cs] == [7, 8, 11, 12, 13, 17, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 31, 32, 33]
    assert [c['trainId'] for c in cs] == list(range(19))
    assert [c['name'] for c in cs if c['isthing']] == ['person', 'rider', 'car', 'truck', 'bus', 'train',
                                                       'motorcycle', 'bicycle']


def test_path_and_errors(tmp_path):
    good = tmp_path / 'v.txt'
    good.write_text('0:cat,kitty\n1:dog\n')
    assert load_vocabulary(good) == [['cat', 'kitty'], ['dog']]
    cases = {
        'gap.txt': ('0:a\n2:b\n', 'out of order'),
        'empty_name.txt': ('0:a,,b\n', 'empty name'),
        'dup_syn.txt': ('0:a,b,a\n', 'repeats synonym'),
        'dup_entry.txt': ('0:a,b\n1:a,b\n', 'duplicates the entry of class 0'),
        'no_colon.txt': ('cat\n', "expected '<index>:"),
        'bad_idx.txt': ('x:cat\n', 'not an integer'),
        'nothing.txt': ('\n', 'no classes'),
    }
    for fname, (text, msg) in cases.items():
        p = tmp_path / fname
        p.write_text(text)
        with pytest.raises(ValueError, match=msg) as info:
            load_vocabulary(p)
        assert fname in str(info.value)
    with pytest.raises(FileNotFoundError, match='neither a builtin name'):
        load_vocabulary('no_such_vocabulary')
    with pytest.raises(FileNotFoundError, match='no category metadata'):
        load_category_meta('nope')
