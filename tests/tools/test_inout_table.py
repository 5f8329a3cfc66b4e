"""inout_table: finds the latest panoptic metrics of each work dir, builds the study's table, CSV and plot."""
import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / 'tools/analysis'))
from inout_table import PUBLISHED, collect_rows, find_metrics, main, markdown, to_csv, write_outputs  # noqa: E402

TOOL = Path(__file__).resolve().parents[2] / 'tools/analysis/inout_table.py'


def _metrics(pq, st, th, **extra):
    return {'panoptic/PQ': pq, 'panoptic/SQ': 80.0, 'panoptic/PQ_th': th, 'panoptic/PQ_st': st,
            'panoptic/RQ_st': 70.0, 'data_time': 0.01, 'time': 0.2, **extra}


def write_test_dump(work_dir: Path, ts: str, record: dict) -> Path:
    """What LoggerHook.after_test_epoch writes: <work_dir>/<ts>/<ts>.json, one JSON object."""
    path = work_dir / ts / f'{ts}.json'
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(record))
    return path




def val_scalars(work_dir: Path, ts: str, records: list[dict]) -> Path:
    """What LocalVisBackend writes during training: <work_dir>/<ts>/vis_data/<ts>.json, JSON lines."""
    path = work_dir / ts / 'vis_data' / f'{ts}.json'
    path.parent.mkdir(parents=True)
    path.write_text(''.join(json.dumps(r) + '\n' for r in records))
    # scalars.json holds the same lines; a different value here proves it is not the one read
    (path.parent / 'scalars.json').write_text(json.dumps(_metrics(1.0, 1.0, 1.0, step=1000)) + '\n')
    return path


@pytest.fixture()
def runs(tmp_path):
    upper = tmp_path / 'upper_bound'
    write_test_dump(upper, '20260101_100000', _metrics(10.0, 11.0, 12.0))  # an older evaluation
    latest = write_test_dump(upper, '20260103_090000', _metrics(58.1974, 63.9951, 50.2236))
    (upper / '20260104_000000').mkdir()  # a later run that crashed before evaluating
    (upper / '20260104_000000' / '20260104_000000.log').write_text('crash\n')
    lower = tmp_path / 'lower_bound'
    val = val_scalars(lower, '20260102_120000', [
        {'lr': 1e-4, 'loss': 3.2, 'iter': 50, 'step': 50},
        _metrics(30.0, 60.0, 0.0, step=500),
        {'lr': 1e-5, 'loss': 2.1, 'iter': 1000, 'step': 1000},
        _metrics(37.9654, 65.5751, 0.0, step=1000)])
    empty = tmp_path / 'zero_shot'
    empty.mkdir()
    return dict(upper=(upper, latest), lower=(lower, val), empty=empty)


def test_find_latest_metrics(runs):
    upper, latest = runs['upper']
    assert find_metrics(upper) == (latest, {'PQ': 58.1974, 'PQ_st': 63.9951, 'PQ_th': 50.2236})
    lower, val = runs['lower']
    assert find_metrics(lower) == (val, {'PQ': 37.9654, 'PQ_st': 65.5751, 'PQ_th': 0.0})  # last val record
    assert find_metrics(val)[1]['PQ'] == 37.9654  # a metrics file directly
    assert find_metrics(latest.parent)[0] == latest  # a <timestamp> folder


def test_missing_metrics_name_the_dir(runs, tmp_path):
    with pytest.raises(FileNotFoundError) as info:
        find_metrics(runs['empty'])
    assert str(runs['empty']) in str(info.value) and "'panoptic/PQ'" in str(info.value)
    assert 'tools/test.py' in str(info.value)
    with pytest.raises(FileNotFoundError, match='run dir not found: .*nope'):
        find_metrics(tmp_path / 'nope')
    write_test_dump(tmp_path / 'partial', '20260101_000000', {'panoptic/PQ': 5.0, 'panoptic/PQ_st': 4.0})
    with pytest.raises(ValueError, match=r"20260101_000000.json: the record with 'panoptic/PQ' lacks "
                                         r"\['panoptic/PQ_th'\]"):
        find_metrics(tmp_path / 'partial')
    broken = tmp_path / 'broken' / '20260101_000000' / 'vis_data' / '20260101_000000.json'
    broken.parent.mkdir(parents=True)
    broken.write_text(json.dumps(_metrics(1, 2, 3)) + '\n{"panoptic/PQ": 4')
    with pytest.raises(ValueError, match='20260101_000000.json: line 2 is not JSON'):
        find_metrics(tmp_path / 'broken')


def test_rows_table_and_csv(runs):
    rows, skipped = collect_rows([str(runs['upper'][0]), str(runs['lower'][0])])
    assert [r.name for r in rows] == ['upper_bound', 'lower_bound'] and skipped == []
    md = markdown(rows)
    assert md.splitlines() == [
        '| approach | Perf All (PQ) | Perf Stuff/In (PQ) | Perf Things/Out (PQ) |',
        '|---|---:|---:|---:|',
        '| upper_bound | 58.197 | 63.995 | 50.224 |',
        '| lower_bound | 37.965 | 65.575 | 0.000 |']
    md = markdown(rows, baseline='lower_bound')
    assert md.splitlines()[0].endswith('| Δ All vs lower_bound | Δ Stuff/In vs lower_bound | '
                                       'Δ Things/Out vs lower_bound |')
    assert md.splitlines()[2] == '| upper_bound | 58.197 | 63.995 | 50.224 | +20.232 | -1.580 | +50.224 |'
    table = list(csv.DictReader(to_csv(rows, 'lower_bound').splitlines()))
    assert table[0]['pq_all'] == '58.197' and table[0]['delta_out'] == '50.224' and table[0]['source'] == 'ours'
    assert table[1]['metrics_file'] == str(runs['lower'][1])
    with pytest.raises(ValueError, match="--baseline 'nope' is not one of the rows"):
        markdown(rows, baseline='nope')


def test_names_published_and_skip_missing(runs):
    dirs = [str(runs['upper'][0]), str(runs['empty']), str(runs['lower'][0])]
    with pytest.raises(FileNotFoundError, match='zero_shot'):
        collect_rows(dirs)
    rows, skipped = collect_rows(dirs, names=['UB', 'ZS', 'LB'], skip_missing=True, published=True)
    assert skipped == [str(runs['empty'])]
    assert [r.name for r in rows] == ['UB', 'LB'] + [p[0] for p in PUBLISHED]
    assert [r.source for r in rows] == ['ours'] * 2 + ['published'] * 6
    md = markdown(rows)
    assert '| Two-model fusion, entropy, R50 (published) | 58.227 | 64.238 | 49.962 |' in md
    assert '| Lower bound: fine-tune on 008, R50 (published) | 37.965 | 65.575 | 0.000 |' in md
    assert {p[0]: p[1:] for p in PUBLISHED}['Zero-shot FC-CLIP, R50'] == (40.311, 48.234, 29.416)
    with pytest.raises(ValueError, match=r'--names gives 2 name\(s\) for 3 run dir\(s\)'):
        collect_rows(dirs, names=['a', 'b'])
    with pytest.raises(ValueError, match=r"duplicate run name\(s\) \['x'\]"):
        collect_rows(dirs[::2], names=['x', 'x'])
    with pytest.raises(ValueError, match=r'no run has panoptic metrics \(1 skipped'):
        collect_rows([str(runs['empty'])], skip_missing=True)


def test_outputs_without_matplotlib(runs, tmp_path, monkeypatch, capsys):
    rows, _ = collect_rows([str(runs['upper'][0])])
    monkeypatch.setitem(sys.modules, 'matplotlib', None)  # `import matplotlib` raises ImportError
    written = write_outputs(rows, str(tmp_path / 'out'))
    assert sorted(written) == ['csv', 'md']
    assert sorted(p.name for p in (tmp_path / 'out').iterdir()) == ['inout_table.csv', 'inout_table.md']
    assert 'matplotlib is not installed; skipped the plot' in capsys.readouterr().out


def test_cli_writes_md_csv_png(runs, tmp_path):
    out = tmp_path / 'table'
    res = subprocess.run([sys.executable, str(TOOL), str(runs['upper'][0]), str(runs['empty']),
                          str(runs['lower'][0]), '--names', 'UB', 'ZS', 'LB', '--skip-missing', '--published',
                          '--baseline', 'LB', '--out-dir', str(out)], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert '| UB | 58.197 | 63.995 | 50.224 | +20.232 | -1.580 | +50.224 |' in res.stdout
    assert f'skipped 1 run dir(s) without panoptic metrics: {runs["empty"]}' in res.stdout
    assert (out / 'inout_table.md').read_text().splitlines()[2].startswith('| UB | 58.197')
    assert len((out / 'inout_table.csv').read_text().splitlines()) == 1 + 2 + 6
    assert (out / 'inout_table.png').stat().st_size > 5000
    res = subprocess.run([sys.executable, str(TOOL), str(runs['empty'])], capture_output=True, text=True)
    assert res.returncode == 1 and res.stderr.startswith('inout_table.py: error: ')
    assert str(runs['empty']) in res.stderr


def test_main_prints_only_without_out_dir(runs, capsys):
    assert main([str(runs['lower'][0])]) == 0
    assert capsys.readouterr().out == markdown(collect_rows([str(runs['lower'][0])])[0])
