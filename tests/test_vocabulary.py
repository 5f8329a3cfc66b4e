"""ovseg.vocabulary: parsing, files, resolving specs, name matching, seen/unseen overlap, DreamMask mapping."""
import json

import pytest

from ovseg.vocabulary import (
    SynonymIndex,
    available_vocabularies,
    dump_vocabulary,
    load_category_meta,
    load_vocabulary,
    map_names,
    name_variants,
    normalize_name,
    normalize_vocabulary,
    parse_vocabulary_string,
    resolve_vocabulary,
    seen_classes,
    split_synonyms,
    vocabulary_file,
)

EXPECTED = dict(coco_panoptic=133, ade20k_150=150, ade20k_847=847, pascal_context_59=59, pascal_context_459=459,
                pascal_voc_20=20, pascal_voc_21=21, cityscapes=19, mapillary_vistas=65, toy_scenes=11)


# ------------------------------------------------------------------------------------------------ names
@pytest.mark.parametrize('raw,norm', [
    ('  The Traffic-Lights. ', 'traffic lights'),
    ('Traffic_Light ', 'traffic light'),
    ('wall-other-merged', 'wall other merged'),
    ("lord's table", 'lords table'),
    ('Café  Au   Lait', 'cafe au lait'),
    ('traffic sign (back)', 'traffic sign back'),
    ('An apple', 'apple'),
    ('some  water', 'water'),
    ('a', 'a'),  # a lone article is a name, not a prefix
    ('theatre', 'theatre'),  # only whole-word articles are dropped
    ('狗', ''),  # nothing ASCII left
])
def test_normalize_name_one_rule(raw, norm):
    assert normalize_name(raw) == norm


def test_normalize_name_rejects_non_strings():
    with pytest.raises(TypeError, match='must be a string'):
        normalize_name(3)


def test_name_variants_singular_plural():
    assert {'box', 'boxes'} <= name_variants('boxes')
    assert 'bus' in name_variants('buses')
    assert 'traffic light' in name_variants('traffic lights')
    assert 'berries' in name_variants('berry') and 'berry' in name_variants('berries')
    assert name_variants('') == {''}


def test_synonym_index_lookup():
    v = SynonymIndex([['traffic light', 'stoplight'], ['bus'], ['box', 'crate'], 'glass, cup'])
    assert len(v) == 4 and v.names == ['traffic light', 'bus', 'box', 'glass']
    assert v.lookup('The Traffic-Lights') == 'traffic light'
    assert v.lookup('stoplights') == 'traffic light'
    assert v.lookup('buses') == 'bus' and v.index('buses') == 1
    assert v.lookup('crates') == 'box' and v.lookup('Cups') == 'glass'
    assert v.lookup('plate') is None and 'plate' not in v and 'BUS' in v
    assert v.to_json()['categories'][2] == {'name': 'box', 'synonyms': ['box', 'crate']}
    assert SynonymIndex.from_names(['a cat']).lookup('cats') == 'a cat'
    with pytest.raises(ValueError, match='class 1 .* contains an empty name'):
        SynonymIndex([['a'], ['b', ' ']])
    with pytest.raises(ValueError, match="class 0: synonym '!!' has no letters"):
        SynonymIndex([['!!']])


def test_synonym_index_first_class_wins():
    v = SynonymIndex([['pet', 'cat'], ['cat']])
    assert v.index('cats') == 0 and v.index('Cat') == 0


# ------------------------------------------------------------------------------------------------ parsing
def test_split_synonyms():
    assert split_synonyms('cat, kitty') == ('cat', 'kitty')
    assert split_synonyms(['cat', ' kitty ']) == ('cat', 'kitty')
    assert split_synonyms(('dog', )) == ('dog', )
    with pytest.raises(ValueError, match='class 3 has no names'):
        split_synonyms([], 'class 3')
    with pytest.raises(ValueError, match="class 2 \\('cat,,dog'\\) contains an empty name"):
        split_synonyms('cat,,dog', 'class 2')
    with pytest.raises(ValueError, match='names must be strings, got int'):
        split_synonyms(['cat', 3])
    with pytest.raises(ValueError, match='expected a string or a list'):
        split_synonyms({'name': 'cat'})


def test_parse_vocabulary_string():
    assert parse_vocabulary_string(' a , b ;c') == [['a', 'b'], ['c']]
    assert parse_vocabulary_string('cat;') == [['cat']]  # one trailing ';' marks a one-class vocabulary
    with pytest.raises(ValueError, match='class 1 is an empty class entry'):
        parse_vocabulary_string('a;;b')
    with pytest.raises(ValueError, match='class 0 .* contains an empty name'):
        parse_vocabulary_string('a,,b;c')


def test_normalize_vocabulary_validation():
    assert normalize_vocabulary([['cat', ' kitty'], 'dog, puppy']) == [('cat', 'kitty'), ('dog', 'puppy')]
    with pytest.raises(ValueError, match='Empty vocabulary'):
        normalize_vocabulary([])
    with pytest.raises(ValueError, match='Vocabulary class 1 has no names'):
        normalize_vocabulary([['a'], []])
    with pytest.raises(ValueError, match='Vocabulary class 0 .* contains an empty name'):
        normalize_vocabulary([['a', '']])
    with pytest.raises(ValueError, match='class 2 .* repeats class 0'):
        normalize_vocabulary([['Cat', 'kitty'], ['dog'], ['cat ', 'KITTY']])


# ------------------------------------------------------------------------------------------------ files
@pytest.mark.parametrize('name,count', sorted(EXPECTED.items()))
def test_builtin_sizes(name, count):
    vocab = load_vocabulary(name)
    assert len(vocab) == count
    assert all(syns and all(s.strip() == s and s for s in syns) for syns in vocab)
    assert vocabulary_file(name).name == f'{name}.txt'


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
    with pytest.raises(FileNotFoundError, match="no category metadata 'nope_categories.json'"):
        load_category_meta('nope')


def test_txt_forms_and_roundtrip(tmp_path):
    indexed = tmp_path / 'v.txt'
    indexed.write_text('# comment\n0:cat,kitty\n\n1: dog\n')
    assert load_vocabulary(indexed) == [['cat', 'kitty'], ['dog']]
    plain = tmp_path / 'plain.txt'
    plain.write_text('cat, kitty\ntraffic sign (back),back of sign\n')
    assert load_vocabulary(plain) == [['cat', 'kitty'], ['traffic sign (back)', 'back of sign']]
    out = tmp_path / 'out.txt'
    dump_vocabulary([['cat', 'kitty'], 'dog'], out)
    assert out.read_text() == '0:cat,kitty\n1:dog\n'
    assert load_vocabulary(out) == [['cat', 'kitty'], ['dog']]
    with pytest.raises(ValueError, match=r"class 0: synonym\(s\) \['a,b'\] contain"):
        dump_vocabulary([['a,b']], tmp_path / 'bad.txt')


def test_json_forms(tmp_path):
    cases = {
        'names.json': (['car', ['dog', 'puppy']], [['car'], ['dog', 'puppy']]),
        'coco.json': ({'categories': [{'id': 1, 'name': 'car', 'synonyms': ['car', 'auto']}]}, [['car', 'auto']]),
    }
    for fname, (data, expected) in cases.items():
        (tmp_path / fname).write_text(json.dumps(data))
        assert load_vocabulary(tmp_path / fname) == expected
    (tmp_path / 'bad.json').write_text(json.dumps({'classes': ['a']}))
    with pytest.raises(ValueError, match='bad.json: a JSON object vocabulary needs a "categories" list'):
        load_vocabulary(tmp_path / 'bad.json')
    (tmp_path / 'noname.json').write_text(json.dumps([{'id': 3}]))
    with pytest.raises(ValueError, match='noname.json: class 0: a category object needs a "name"'):
        load_vocabulary(tmp_path / 'noname.json')


def test_file_errors_name_the_file_and_line(tmp_path):
    cases = {
        'gap.txt': ('0:a\n2:b\n', 'gap.txt:2: class index 2 out of order'),
        'empty_name.txt': ('0:a,,b\n', 'empty_name.txt:1: class 0 .* contains an empty name'),
        'dup_syn.txt': ('0:a,b,a\n', 'dup_syn.txt: class 0 repeats synonym'),
        'dup_entry.txt': ('0:a,b\n1:A,b\n', 'dup_entry.txt: class 1 duplicates the entry of class 0'),
        'no_colon.txt': ('0:cat\ndog\n', "no_colon.txt:2: expected '<index>:"),
        'bad_idx.txt': ('x:cat\n', "bad_idx.txt:1: class index 'x' is not an integer"),
        'mixed.txt': ('cat\n1:dog\n', 'mixed.txt:2: indexed line'),
        'nothing.txt': ('\n# only a comment\n', 'nothing.txt: vocabulary file has no classes'),
    }
    for fname, (text, msg) in cases.items():
        p = tmp_path / fname
        p.write_text(text)
        with pytest.raises(ValueError, match=msg):
            load_vocabulary(p)
    with pytest.raises(FileNotFoundError, match="'no_such_vocabulary' is neither a builtin name"):
        load_vocabulary('no_such_vocabulary')
    with pytest.raises(FileNotFoundError, match='missing.txt'):
        load_vocabulary(tmp_path / 'missing.txt')


# ------------------------------------------------------------------------------------------------ resolving
def test_resolve_vocabulary_every_spec(tmp_path):
    syns, things = resolve_vocabulary('coco_panoptic')
    assert len(syns) == 133 and syns[0][0] == 'person' and sum(things) == 80
    syns, things = resolve_vocabulary('ade20k_847')
    assert len(syns) == 847 and things is None  # no category metadata for A-847
    assert resolve_vocabulary('cat,kitty;dog') == ([['cat', 'kitty'], ['dog']], None)
    assert resolve_vocabulary('cat,kitty') == ([['cat', 'kitty']], None)
    assert resolve_vocabulary('cat;', is_thing=[False]) == ([['cat']], [False])
    assert resolve_vocabulary([['cat', 'kitty'], 'dog, puppy', 'bird']) == (
        [['cat', 'kitty'], ['dog', 'puppy'], ['bird']], None)
    meta = dict(classes=('a', 'b'), class_synonyms=[['a', 'x'], ['b']], is_thing=[True, False])
    assert resolve_vocabulary(meta) == ([['a', 'x'], ['b']], [True, False])
    assert resolve_vocabulary(dict(classes=('a', 'b'))) == ([['a'], ['b']], None)
    assert resolve_vocabulary(meta, is_thing=[0, 1])[1] == [False, True]  # explicit flags win
    path = tmp_path / 'coco_panoptic.txt'  # a user file named like a builtin does not borrow its flags
    path.write_text('0:a\n')
    assert resolve_vocabulary(str(path)) == ([['a']], None)
    assert resolve_vocabulary(path) == ([['a']], None)


def test_resolve_vocabulary_errors():
    with pytest.raises(FileNotFoundError, match="'coco_panoptc' is neither a builtin name.*one class: 'name;'"):
        resolve_vocabulary('coco_panoptc')
    with pytest.raises(FileNotFoundError, match='nope/v.txt'):
        resolve_vocabulary('nope/v.txt')
    with pytest.raises(ValueError, match='is_thing has 2 entries for a vocabulary of 133 classes'):
        resolve_vocabulary('coco_panoptic', is_thing=[True, False])
    with pytest.raises(ValueError, match='Duplicate vocabulary entry: class 1'):
        resolve_vocabulary('cat;Cat')
    with pytest.raises(ValueError, match='neither "class_synonyms" nor "classes"'):
        resolve_vocabulary({'palette': []})
    with pytest.raises(TypeError, match='cannot read a vocabulary from int'):
        resolve_vocabulary(3)


# ------------------------------------------------------------------------------------------------ seen / unseen
def _official_overlap(test, train):
    """FC-CLIP ``category_overlapping_mask`` (fcclip/fcclip.py): synonyms compared after strip().lower()."""
    train_names = {s.strip().lower() for entry in train for s in entry}
    return [any(s.strip().lower() in train_names for s in entry) for entry in test]


@pytest.mark.parametrize('test_name', sorted(EXPECTED))
def test_seen_classes_equals_fcclip_rule_on_builtins(test_name):
    """normalize_name leaves FC-CLIP's α/β split unchanged for every builtin vocabulary against COCO."""
    train = load_vocabulary('coco_panoptic')
    test = load_vocabulary(test_name)
    seen = seen_classes(test, train)
    assert seen == _official_overlap(test, train)
    assert len(seen) == len(test)


def test_seen_classes_counts_and_custom_names():
    train = load_vocabulary('coco_panoptic')
    assert all(seen_classes(train, train))
    assert sum(seen_classes(load_vocabulary('cityscapes'), train)) == sum(
        _official_overlap(load_vocabulary('cityscapes'), train))
    # the one rule also folds punctuation/articles FC-CLIP's strip().lower() does not
    assert seen_classes(['Traffic_Light', 'the dog', 'zebra crossing'], [['traffic light'], ['dog']]) == [
        True, True, False]
    assert seen_classes(['cat, kitty'], ['kitty']) == [True]


def test_fcclip_seen_mask_is_this_rule():
    """The model has no copy of its own: FC-CLIP's seen mask is ``seen_classes`` of its train and test vocabularies."""
    import ovseg.models.segmentors.fcclip as fcclip
    import ovseg.vocabulary
    assert fcclip.seen_classes is ovseg.vocabulary.seen_classes
    assert fcclip.normalize_vocabulary is ovseg.vocabulary.normalize_vocabulary


# ------------------------------------------------------------------------------------------------ DreamMask names
def test_map_names_base_then_sorted_novel():
    base = [['person', 'child'], ['traffic light'], ['car']]
    m = map_names(['Child', 'traffic_light', 'awning', 'Stairway', 'car', 'The Awning'], base)
    assert m == {'Child': 0, 'traffic_light': 1, 'car': 2, 'awning': 3, 'The Awning': 3, 'Stairway': 4}
    assert map_names(reversed(list(m)), base) == m  # order of arrival does not matter
    with pytest.raises(ValueError, match="category name '\\?\\?' has no letters"):
        map_names(['??'], base)
