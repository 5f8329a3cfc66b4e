import numpy as np
import pytest

from ovseg.vocabulary import SynonymIndex
from projects.dreammask.dreammask.nss.layout import (
    LayoutValidationError,
    LLMLayoutGenerator,
    RuleBasedLayoutGenerator,
    draw_layout_png,
    layout_html,
    parse_layout_answer,
    sample_categories,
    validate_objects,
)
from projects.dreammask.dreammask.nss.llm import ScriptedLLM

VOCAB = SynonymIndex([['table', 'desk'], ['plate'], ['floor'], ['wall'], ['cup']])


def div(name, x, y, w, h):
    return (f'<div class="object" data-name="{name}" style="position:absolute; left:{x}px; top:{y}px; '
            f'width:{w}px; height:{h}px;"></div>')


def html(*divs):
    return '<div class="canvas" style="position:relative; width:100px; height:100px;">' + ''.join(
        divs) + '</div>'


def check(text):
    return validate_objects(parse_layout_answer(text), VOCAB, 100, 100, tolerance=0, min_size=1)


def test_good_html_parses_to_canonical_names():
    objs = check('```html\n' + html(div('Desks', 10, 50, 60, 30), div('plate', 20, 45, 10, 5)) + '\n```')
    assert [(o.name, o.x, o.y, o.w, o.h) for o in objs] == [('table', 10, 50, 60, 30),
                                                            ('plate', 20, 45, 10, 5)]


def test_json_answer_parses():
    objs = check('{"objects": [{"name": "cup", "box": {"x": 1, "y": 2, "w": 3, "h": 4}}]}')
    assert objs[0].box() == {'x': 1, 'y': 2, 'w': 3, 'h': 4}


@pytest.mark.parametrize('text,reason', [
    (html(div('spaceship', 0, 0, 10, 10)), 'unknown_name'),
    (html(div('cup', 95, 0, 10, 10)), 'out_of_canvas'),
    (html(div('cup', -3, 0, 10, 10)), 'out_of_canvas'),
    (html(div('cup', 0, 95, 10, 10)), 'out_of_canvas'),
    (html(div('cup', 5, 5, 0, 10)), 'zero_area'),
    (html(div('cup', 5, 5, 10, -4)), 'zero_area'),
    ('<div class="canvas"><p>no objects here</p></div>', 'malformed'),
    ('<div class="object" data-name="cup" style="left:1px; top:x; width:3px; height:4px"></div>',
     'malformed'),
    ('<div class="object" data-name="cup" style="left:1px; width:3px; height:4px"></div>', 'malformed'),
    ('{"objects": [{"name": "cup", "box": {"x": 1}', 'malformed'),
    ('{"objects": "none"}', 'malformed'),
    ('{"objects": []}', 'empty_layout'),
    ('', 'malformed'),
])
def test_each_bad_answer_is_rejected_with_its_reason(text, reason):
    with pytest.raises(LayoutValidationError) as e:
        check(text)
    assert e.value.reason == reason


def test_tolerance_clips_small_overhang():
    objs = validate_objects(parse_layout_answer(html(div('cup', 95, 0, 8, 10))), VOCAB, 100, 100, tolerance=4)
    assert objs[0].box() == {'x': 95, 'y': 0, 'w': 5, 'h': 10}


def test_llm_generator_retries_then_accepts():
    good = html(div('table', 10, 50, 60, 30), div('plate', 20, 45, 10, 5))
    llm = ScriptedLLM(['not html', html(div('ufo', 0, 0, 5, 5)), good])
    res = LLMLayoutGenerator(llm, max_attempts=3).generate('scene_00003', ['table', 'plate'], 7, 100, 100,
                                                           VOCAB)
    assert res.layout is not None and res.attempts == 3
    assert res.attempt_reasons == ['malformed', 'unknown_name']
    assert len({c['seed'] for c in llm.calls}) == 3  # a fresh seed per attempt
    assert 'table' in llm.calls[0]['messages'][-1]['content']


def test_llm_generator_gives_up_after_max_attempts_with_last_reason():
    llm = ScriptedLLM([html(div('cup', 0, 0, 0, 5)), {'error': 'llm_timeout'}])
    res = LLMLayoutGenerator(llm, max_attempts=4).generate('scene_00000', ['cup'], 0, 100, 100, VOCAB)
    assert res.layout is None and res.attempts == 4 and res.reason == 'llm_timeout'
    assert res.attempt_reasons == ['zero_area', 'llm_timeout', 'zero_area', 'llm_timeout']


RULES = dict(floor=dict(kind='stuff', region='bottom'), wall=dict(kind='stuff', region='top'),
             table=dict(support=('floor', ), size=(0.4, 0.5), aspect=(1.5, 2.0), instances=(1, 1)),
             plate=dict(support=('table', ), size=(0.08, 0.1), aspect=(1.5, 2.0),
                        instances=(1, 1)), cup=dict(support=('table', 'floor'), size=(0.08, 0.1),
                                                    aspect=(0.8, 1.0), instances=(1, 2)))


def _iou(a, b):
    ax0, ay0, ax1, ay1 = a.xyxy()
    bx0, by0, bx1, by1 = b.xyxy()
    inter = max(0, min(ax1, bx1) - max(ax0, bx0)) * max(0, min(ay1, by1) - max(ay0, by0))
    return inter / (a.w * a.h + b.w * b.h - inter)


def test_rule_generator_support_relations_overlap_and_determinism():
    gen = RuleBasedLayoutGenerator(rules=RULES, max_iou=0.2)
    for seed in range(20):
        res = gen.generate('scene_00000', ['wall', 'floor', 'table', 'plate', 'cup'], seed, 256, 256)
        lay = res.layout
        names = [o.name for o in lay.objects]
        assert names[:2] == ['wall', 'floor']  # background first
        by = {o.name: o for o in lay.objects}
        wall, floor, table = by['wall'], by['floor'], by['table']
        assert wall.y == 0 and wall.y + wall.h == floor.y and floor.y + floor.h == 256
        assert floor.y <= table.y + table.h <= 256  # table stands on the floor
        if 'plate' in by:  # plate rests on the table top and is painted after it
            p = by['plate']
            assert table.x <= p.x and p.x + p.w <= table.x + table.w
            assert table.y <= p.y + p.h <= table.y + 0.25 * table.h
            assert names.index('plate') > names.index('table')
        for o in lay.objects:
            assert 0 <= o.x and 0 <= o.y and o.x + o.w <= 256 and o.y + o.h <= 256 and o.w > 0 and o.h > 0
        things = [o for o in lay.objects if o.name in ('table', 'cup')]
        for i in range(len(things)):
            for j in range(i + 1, len(things)):
                assert _iou(things[i], things[j]) <= 0.2 + 1e-9
        again = gen.generate('scene_00000', ['wall', 'floor', 'table', 'plate', 'cup'], seed, 256, 256).layout
        assert again.to_json() == lay.to_json()


def test_sample_categories_sizes_novel_and_determinism():
    base, novel = [f'b{i}' for i in range(20)], ['n1', 'n2']
    for s in range(30):
        cats = sample_categories(np.random.default_rng(s), base, novel, 5, 8, min_novel=1)
        assert 5 <= len(cats) <= 8 and len(set(cats)) == len(cats) and any(c in novel for c in cats)
        assert cats == sample_categories(np.random.default_rng(s), base, novel, 5, 8, min_novel=1)


def test_drawings():
    lay = RuleBasedLayoutGenerator(rules=RULES).generate('scene_00001', ['wall', 'floor', 'table'], 1, 128,
                                                         96).layout
    h = layout_html(lay)
    assert h.count('class="object"') == len(lay.objects) and 'width:128px; height:96px' in h
    # the HTML we write parses back to the same boxes
    assert [(o['name'], o['x'], o['w']) for o in parse_layout_answer(h)] == [(o.name, o.x, o.w)
                                                                             for o in lay.objects]
    img = draw_layout_png(lay)
    assert img.size == (128, 96) and img.mode == 'RGB'
