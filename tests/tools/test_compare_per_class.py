"""compare_per_class: reads ovseg metric dicts, sorts by gain, restricts to a class list, draws the figure."""
import json
import subprocess
import sys

import pytest

sys.path.insert(0, 'tools/analysis')
from compare_per_class import compare, load_per_class  # noqa: E402


def test_rows_sorted_by_gain_and_restricted(tmp_path):
    a = tmp_path / 'a.json'
    b = tmp_path / 'b.json'
    a.write_text(json.dumps({'sem_seg/mIoU': 30, 'sem_seg/IoU-stairway': 2.5, 'sem_seg/IoU-awning': 3.7,
                             'sem_seg/IoU-car': 60.0}))
    # JSON lines (an mmengine scalars log): the last record with per-class keys counts
    b.write_text('\n'.join(json.dumps(r) for r in [{'loss': 1.0}, {'sem_seg/IoU-stairway': 16.5,
                                                                    'sem_seg/IoU-awning': 12.7,
                                                                    'sem_seg/IoU-car': 59.0}]))
    rows = compare(load_per_class(a), load_per_class(b), ['awning', 'stairway'])
    assert [r[0] for r in rows] == ['stairway', 'awning']
    assert rows[0][3] == pytest.approx(14.0)
    novel = tmp_path / 'novel.txt'
    novel.write_text('0:stairway,staircase\n1:awning\n')
    fig = tmp_path / 'fig.png'
    out = subprocess.run([sys.executable, 'tools/analysis/compare_per_class.py', str(a), str(b), '--classes',
                          str(novel), '--out', str(fig)], capture_output=True, text=True, check=True)
    assert fig.stat().st_size > 1000 and 'mean gain over 2 classes: +11.50' in out.stdout


def test_missing_per_class_values_explain_classwise(tmp_path):
    a = tmp_path / 'a.json'
    a.write_text(json.dumps({'sem_seg/mIoU': 30.0, 'note': 'x'}))
    with pytest.raises(ValueError, match='classwise=True'):
        load_per_class(a)
