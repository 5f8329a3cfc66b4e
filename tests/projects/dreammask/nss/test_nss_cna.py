import json

import pytest

from ovseg.vocabulary import SynonymIndex, normalize_name
from projects.dreammask.dreammask.nss.cna import CNAParseError, count_novel, parse_category_list, run_cna
from projects.dreammask.dreammask.nss.llm import LLMError, ScriptedLLM
from projects.dreammask.dreammask.nss.vocab import COCO_THING_NAMES, load_base_vocabulary


def test_normalize_and_vocabulary_lookup():
    assert normalize_name('  The Traffic-Lights. ') == 'traffic lights'
    v = SynonymIndex([['traffic light', 'stoplight'], ['bus'], ['box', 'crate']])
    assert v.lookup('Traffic Lights') == 'traffic light'
    assert v.lookup('stoplights') == 'traffic light'
    assert v.lookup('buses') == 'bus'
    assert v.lookup('boxes') == 'box' and v.lookup('crates') == 'box'
    assert v.lookup('glass') is None


def test_coco_base_vocabulary_has_80_names_with_synonyms():
    v = load_base_vocabulary('coco')
    assert len(v) == 80 and tuple(v.names) == COCO_THING_NAMES
    assert v.lookup('children') == 'person'  # an ovseg prompt-engineering synonym counts as base


def test_vocabulary_files(tmp_path):
    (tmp_path / 'v.txt').write_text('0:road,street\n1:hook\n')
    assert load_base_vocabulary(str(tmp_path / 'v.txt')).lookup('streets') == 'road'
    (tmp_path / 'v.json').write_text(json.dumps({'categories': [{'id': 1, 'name': 'car'}]}))
    assert load_base_vocabulary(str(tmp_path / 'v.json')).names == ['car']
    with pytest.raises(FileNotFoundError, match='nope.txt'):
        load_base_vocabulary(str(tmp_path / 'nope.txt'))


@pytest.mark.parametrize('text,expected', [
    ('["Hook", "wheel", "a seat"]', ['hook', 'wheel', 'seat']),
    ('```json\n["hook","wheel"]\n```', ['hook', 'wheel']),
    ('{"categories": ["hook", "wheel"]}', ['hook', 'wheel']),
    ('1. Hook\n2. Wheel: round part\n3) Seat', ['hook', 'wheel', 'seat']),
    ('- hook\n* wheel\n- hook', ['hook', 'wheel']),
    ('hook, wheel, seat', ['hook', 'wheel', 'seat']),
])
def test_parse_category_list(text, expected):
    assert parse_category_list(text) == expected


@pytest.mark.parametrize('text', ['', '   ', 'I cannot help with that {', '[]'])
def test_parse_category_list_rejects_garbage(text):
    with pytest.raises(CNAParseError):
        parse_category_list(text)


def test_parse_category_list_top_k():
    assert parse_category_list('["a1", "b2", "c3", "d4"]', top_k=2) == ['a1', 'b2']


def test_count_novel_counts_once_per_answer_merges_plurals_and_filters_base():
    base = SynonymIndex([['truck'], ['person', 'man', 'men'], ['car']])
    answers = [['hook', 'wheel', 'seat', 'person', 'wheel'], ['hooks', 'wheels', 'road'],
               ['hook', 'road', 'men', 'cars', 'lamp']]
    novel, base_hits, rare = count_novel(answers, base, min_count=2)
    assert novel == [('hook', 3), ('road', 2), ('wheel', 2)]
    assert base_hits == {'person': 1, 'men': 1, 'cars': 1}
    assert rare == {'lamp': 1, 'seat': 1}


def test_run_cna_retries_garbage_records_failures_and_resumes(tmp_path):
    base = SynonymIndex([['truck'], ['person']])
    llm = ScriptedLLM([
        '["hook", "wheel", "person"]',  # repeat 0
        'garbage',
        '["hook", "road"]',  # repeat 1: one unparsable answer, then ok
        {
            'error': 'llm_timeout'
        },
        {
            'error': 'llm_timeout'
        },
        {
            'error': 'llm_timeout'
        },  # repeat 2: gives up
        '["wheels", "road", "seat"]',  # repeat 3
    ])
    summ = run_cna(llm, base, tmp_path, n_repeat=4, top_k=30, min_count=2, max_attempts=3,
                   show_progress=False)
    assert len(llm.calls) == 7
    d = summ.to_dict()
    # repeat 2 lost to timeouts is a failure (asked again next run), not a final rejection
    assert d['generated'] == 4 and d['kept'] == 3 and d['rejected'] == {} and d['failed'] == {'llm_timeout': 1}
    assert not (tmp_path / 'responses' / 'repeat_02.json').exists()
    assert json.loads((tmp_path / 'responses' / 'repeat_02.failed.json').read_text())['reason'] == 'llm_timeout'
    out = json.loads((tmp_path / 'novel_categories.json').read_text())
    assert out['categories'] == [{
        'name': 'hook',
        'count': 2
    }, {
        'name': 'road',
        'count': 2
    }, {
        'name': 'wheel',
        'count': 2
    }]
    assert out['filtered_as_base'] == [{'name': 'person', 'count': 1}]
    assert json.loads((tmp_path / 'base_categories.json').read_text())['num_categories'] == 2
    rec = json.loads((tmp_path / 'responses' / 'repeat_01.json').read_text())
    assert rec['status'] == 'ok' and rec['attempts'] == 2
    # rerun: only the failed repeat is asked again; the finished ones are not
    llm2 = ScriptedLLM(['["seat", "hook"]', '["never", "asked"]'])
    summ2 = run_cna(llm2, base, tmp_path, n_repeat=4, show_progress=False)
    assert len(llm2.calls) == 1 and summ2.skipped == 3 and summ2.to_dict()['failed'] == {}
    assert not (tmp_path / 'responses' / 'repeat_02.failed.json').exists()
    names = {c['name']: c['count'] for c in json.loads((tmp_path / 'novel_categories.json').read_text())['categories']}
    assert names == {'hook': 3, 'road': 2, 'seat': 2, 'wheel': 2}
    # a third run asks nothing and changes nothing
    before = (tmp_path / 'novel_categories.json').read_bytes()
    llm3 = ScriptedLLM(['["never", "asked"]'])
    assert run_cna(llm3, base, tmp_path, n_repeat=4, show_progress=False).skipped == 4 and llm3.calls == []
    assert (tmp_path / 'novel_categories.json').read_bytes() == before


def test_scripted_llm_raises_scripted_errors():
    with pytest.raises(LLMError, match='boom'):
        ScriptedLLM([{'error': 'boom'}]).chat([])
