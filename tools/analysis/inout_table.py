"""PQ all / in-vocabulary (stuff) / out-of-vocabulary (things) across runs: markdown + CSV table and a bar plot.

    python tools/analysis/inout_table.py work_dirs/upper_bound work_dirs/lower_bound work_dirs/zero_shot \\
        --names "Upper bound" "Lower bound" "Zero-shot" --out-dir work_dirs/inout_table --published

Each RUN_DIR is a ``--work-dir`` of ``tools/train.py`` / ``tools/test.py`` (or one metrics file). mmengine
writes its metrics under ``<work_dir>/<timestamp>/``: ``tools/test.py`` dumps ``<timestamp>.json`` (one JSON
object: the test metrics), the val loop of a training run appends one JSON line per evaluation to
``vis_data/<timestamp>.json``. The latest file (by timestamp, then modification time) holding the panoptic
metrics wins, and in it the last record. Keys: ``panoptic/PQ`` (all), ``panoptic/PQ_st`` (stuff = the
in-vocabulary classes of the Cityscapes study), ``panoptic/PQ_th`` (things = out-of-vocabulary), as
``PanopticMetric`` names them under its default prefix ``panoptic``.

Writes ``<out-dir>/inout_table.md``, ``inout_table.csv`` and ``inout_table.png`` (3 bars per run; skipped with a
note when matplotlib is missing). ``--published`` adds the study's published FC-CLIP R50 rows (its README
"03 Results"), marked ``published``. ``--baseline NAME`` adds the differences to that row.
"""
from __future__ import annotations

import argparse
import csv
import io
import json
import os
import os.path as osp
import re
import sys
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, osp.abspath(osp.join(osp.dirname(__file__), '..', '..')))

from ovseg.cli import run_tool  # noqa: E402

# Table columns: (header as in the study's results table, metric key without the prefix).
COLUMNS = (('Perf All (PQ)', 'PQ'), ('Perf Stuff/In (PQ)', 'PQ_st'), ('Perf Things/Out (PQ)', 'PQ_th'))
DEFAULT_PREFIX = 'panoptic'  # PanopticMetric.default_prefix
TIMESTAMP = re.compile(r'^\d{8}_\d{6}$')  # mmengine Runner: time.strftime('%Y%m%d_%H%M%S')

# The study's published Cityscapes val PQ of FC-CLIP R50, fine-tuned 1,000 iterations (seed README, "03 Results").
PUBLISHED = (
    ('Upper bound: fine-tune on 000, R50', 58.197, 63.995, 50.224),
    ('Lower bound: fine-tune on 008, R50', 37.965, 65.575, 0.0),
    ('Zero-shot FC-CLIP, R50', 40.311, 48.234, 29.416),
    ('FTZS: 008 + zero-shot pseudo-labels, R50', 52.972, 58.519, 45.346),
    ('Naive merge: fine-tuned in + zero-shot out, R50', 50.35, 65.575, 29.416),
    ('Two-model fusion, entropy, R50', 58.227, 64.238, 49.962),
)


@dataclass
class Row:
    name: str
    pq_all: float
    pq_in: float
    pq_out: float
    source: str  # 'ours' or 'published'
    metrics_file: str = ''

    @property
    def values(self) -> tuple[float, float, float]:
        return self.pq_all, self.pq_in, self.pq_out


def _records(path: Path) -> list[dict]:
    """The JSON objects of a metrics file: one object (test dump) or JSON lines (val scalars)."""
    text = path.read_text(encoding='utf-8')
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        data = None
    if isinstance(data, dict):
        return [data]
    records = []
    for i, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as e:
            raise ValueError(f'{path}: line {i} is not JSON ({e}); is the run still writing it?') from None
        if isinstance(rec, dict):
            records.append(rec)
    return records


def _candidates(run: Path) -> list[Path]:
    """Timestamped metrics files of a work dir (or of one ``<timestamp>`` folder), newest first."""
    found = []
    for pattern in ('*.json', '*/*.json', 'vis_data/*.json', '*/vis_data/*.json'):
        found += [p for p in run.glob(pattern) if TIMESTAMP.match(p.stem)]
    # newest timestamp first; for one timestamp the test dump (<ts>/<ts>.json) before the val scalars
    return sorted(set(found), key=lambda p: (p.stem, p.stat().st_mtime, p.parent.name != 'vis_data'), reverse=True)


def find_metrics(run: str | os.PathLike, prefix: str = DEFAULT_PREFIX) -> tuple[Path, dict[str, float]]:
    """``(file, {PQ, PQ_st, PQ_th})`` of the latest panoptic evaluation of ``run`` (a work dir or a JSON file)."""
    run = Path(run)
    keys = [f'{prefix}/{k}' for _, k in COLUMNS]
    if run.is_file():
        files = [run]
    elif run.is_dir():
        files = _candidates(run)
    else:
        raise FileNotFoundError(f'run dir not found: {run}')
    for path in files:
        for rec in reversed(_records(path)):
            if keys[0] not in rec:
                continue
            missing = [k for k in keys if k not in rec]
            if missing:
                raise ValueError(f'{path}: the record with {keys[0]!r} lacks {missing}; a PanopticMetric on a '
                                 'dataset with both things and stuff writes all three')
            return path, {k.split('/', 1)[1]: float(rec[k]) for k in keys}
    looked = 'the file itself' if run.is_file() else (
        f'{len(files)} timestamped file(s) <timestamp>/<timestamp>.json or <timestamp>/vis_data/<timestamp>.json')
    raise FileNotFoundError(f"{run}: no panoptic metrics ('{keys[0]}') in {looked}; evaluate the run with "
                            f'tools/test.py <config> <checkpoint> --work-dir {run}')


def _default_name(run: Path) -> str:
    run = run.resolve()
    if run.is_file():
        run = run.parent if TIMESTAMP.match(run.stem) else run.with_suffix('')
    if TIMESTAMP.match(run.name) or run.name == 'vis_data':
        run = run.parent
        if TIMESTAMP.match(run.name):
            run = run.parent
    return run.name


def collect_rows(runs: list[str], names: list[str] | None = None, prefix: str = DEFAULT_PREFIX,
                 skip_missing: bool = False, published: bool = False) -> tuple[list[Row], list[str]]:
    """Rows of the table (runs in the given order, then the published ones) and the run dirs skipped."""
    if names is not None and len(names) != len(runs):
        raise ValueError(f'--names gives {len(names)} name(s) for {len(runs)} run dir(s)')
    names = names if names is not None else [_default_name(Path(r)) for r in runs]
    rows, skipped = [], []
    for run, name in zip(runs, names):
        try:
            path, m = find_metrics(run, prefix)
        except FileNotFoundError:
            if not skip_missing:
                raise
            skipped.append(run)
            continue
        rows.append(Row(name, m['PQ'], m['PQ_st'], m['PQ_th'], 'ours', str(path)))
    if published:
        rows += [Row(n, a, i, o, 'published') for n, a, i, o in PUBLISHED]
    if not rows:
        raise ValueError(f'no run has panoptic metrics ({len(skipped)} skipped: {skipped})')
    labels = [_label(r) for r in rows]
    dup = sorted({n for n in labels if labels.count(n) > 1})
    if dup:
        raise ValueError(f'duplicate run name(s) {dup}; give distinct --names')
    return rows, skipped


def _label(row: Row) -> str:
    return f'{row.name} (published)' if row.source == 'published' else row.name


def _baseline(rows: list[Row], baseline: str | None) -> Row | None:
    if baseline is None:
        return None
    for r in rows:
        if baseline in (r.name, _label(r)):
            return r
    raise ValueError(f'--baseline {baseline!r} is not one of the rows {[_label(r) for r in rows]}')


def markdown(rows: list[Row], baseline: str | None = None) -> str:
    """The study's results-table layout (3 decimals), plus Δ columns against ``baseline``."""
    base = _baseline(rows, baseline)
    head = ['approach'] + [h for h, _ in COLUMNS]
    if base is not None:
        head += [f'Δ {h.split(" (")[0].replace("Perf ", "")} vs {_label(base)}' for h, _ in COLUMNS]
    lines = ['| ' + ' | '.join(head) + ' |', '|' + '---|' + '---:|' * (len(head) - 1)]
    for r in rows:
        cells = [_label(r)] + [f'{v:.3f}' for v in r.values]
        if base is not None:
            cells += [f'{v - b:+.3f}' for v, b in zip(r.values, base.values)]
        lines.append('| ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines) + '\n'


def to_csv(rows: list[Row], baseline: str | None = None) -> str:
    base = _baseline(rows, baseline)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator='\n')
    head = ['approach', 'source', 'pq_all', 'pq_in', 'pq_out']
    if base is not None:
        head += ['delta_all', 'delta_in', 'delta_out']
    writer.writerow(head + ['metrics_file'])
    for r in rows:
        cells = [r.name, r.source] + [f'{v:.3f}' for v in r.values]
        if base is not None:
            cells += [f'{v - b:.3f}' for v, b in zip(r.values, base.values)]
        writer.writerow(cells + [r.metrics_file])
    return buf.getvalue()


def plot(rows: list[Row], out: str) -> bool:
    """Grouped bars (all / in / out) per row; False (with a printed note) when matplotlib is missing."""
    try:
        import matplotlib
    except ImportError:
        print(f'note: matplotlib is not installed; skipped the plot {out} (pip install matplotlib)')
        return False
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    x = range(len(rows))
    fig, ax = plt.subplots(figsize=(max(6.0, 1.3 * len(rows) + 2), 4.5))
    for k, ((header, _), color) in enumerate(zip(COLUMNS, ('#4c72b0', '#55a868', '#dd8452'))):
        bars = ax.bar([i + (k - 1) * 0.27 for i in x], [r.values[k] for r in rows], 0.27,
                      label=header.replace('Perf ', '').replace(' (PQ)', ''), color=color)
        ax.bar_label(bars, fmt='%.1f', fontsize=7)
    ax.set_xticks(list(x), [_label(r) for r in rows], rotation=30, ha='right', fontsize=8)
    ax.set_ylabel('PQ')
    ax.set_ylim(0, max(100.0, max(max(r.values) for r in rows) * 1.1))
    ax.legend(ncol=3, fontsize=8)
    ax.set_title('PQ: all / in-vocabulary (stuff) / out-of-vocabulary (things)')
    fig.tight_layout()
    fig.savefig(out, dpi=150)
    plt.close(fig)
    return True


def write_outputs(rows: list[Row], out_dir: str, baseline: str | None = None) -> dict[str, str]:
    """Write the markdown, CSV and plot atomically; returns ``{kind: path}`` of what was written."""
    from ovseg.utils.atomic_io import atomic_write
    os.makedirs(out_dir, exist_ok=True)
    paths = {'md': osp.join(out_dir, 'inout_table.md'), 'csv': osp.join(out_dir, 'inout_table.csv')}
    atomic_write(paths['md'], lambda f: f.write(markdown(rows, baseline).encode('utf-8')))
    atomic_write(paths['csv'], lambda f: f.write(to_csv(rows, baseline).encode('utf-8')))
    png = osp.join(out_dir, 'inout_table.png')
    if plot(rows, png):
        paths['png'] = png
    return paths


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('runs', nargs='+', metavar='RUN_DIR', help='work dirs (or metrics JSON files), one per row')
    p.add_argument('--names', nargs='+', help='row names, one per RUN_DIR (default: the work dir names)')
    p.add_argument('--out-dir', help='write inout_table.md/.csv/.png here (default: print only)')
    p.add_argument('--baseline', help='row name to compare against (adds Δ columns)')
    p.add_argument('--published', action='store_true', help="add the study's published R50 rows")
    p.add_argument('--skip-missing', action='store_true',
                   help='leave out (and report) run dirs without panoptic metrics instead of failing')
    p.add_argument('--metric-prefix', default=DEFAULT_PREFIX,
                   help=f'evaluator prefix of the PQ keys (default: {DEFAULT_PREFIX}, PanopticMetric\'s)')
    args = p.parse_args(argv)
    rows, skipped = collect_rows(args.runs, args.names, args.metric_prefix, args.skip_missing, args.published)
    print(markdown(rows, args.baseline), end='')
    if skipped:
        print(f'skipped {len(skipped)} run dir(s) without panoptic metrics: {", ".join(skipped)}')
    if args.out_dir:
        written = write_outputs(rows, args.out_dir, args.baseline)
        print('wrote ' + ', '.join(written.values()))
    return 0


if __name__ == '__main__':
    run_tool(main)  # one-line user errors; --debug or OVSEG_DEBUG=1 shows the traceback
