"""Per-class IoU (or PQ) of two runs side by side, sorted by gain — DreamMask's comparison figure.

    python tools/analysis/compare_per_class.py baseline.json dreammask.json --classes novel.txt --out fig.png

Each JSON may be: a metrics dict as ovseg writes it (``sem_seg/IoU-<class>``, ``panoptic/PQ-<class>``, from
metrics with ``classwise=True``; a JSON-lines log is read from its last record holding such keys), or a
plain ``{class: value}`` dict. ``--classes`` (one name per line, or a vocabulary ``idx:name,...`` file)
restricts the plot to those classes, e.g. the novel ones.
"""
from __future__ import annotations

import argparse
import json
import os.path as osp
import re
import sys
from pathlib import Path

sys.path.insert(0, osp.abspath(osp.join(osp.dirname(__file__), '..', '..')))

from ovseg.cli import run_tool  # noqa: E402

KEY = re.compile(r'^(?:[\w.]+/)?(?P<metric>IoU|PQ|SQ|RQ|ACC)-(?P<name>.+)$')


def _records(path: Path) -> list[dict]:
    text = path.read_text()
    try:
        data = json.loads(text)
        return [data] if isinstance(data, dict) else list(data)
    except json.JSONDecodeError:
        return [json.loads(line) for line in text.splitlines() if line.strip()]


def load_per_class(path: str | Path, metric: str = 'IoU') -> dict[str, float]:
    """``{class: value}`` of ``metric`` from one run's JSON (see module docstring)."""
    path = Path(path)
    for rec in reversed(_records(path)):
        found = {}
        for k, v in rec.items():
            m = KEY.match(k)
            if m and m['metric'] == metric:
                found[m['name']] = float(v)
        if found:
            return found
    plain = _records(path)[-1]
    if plain and all(isinstance(v, (int, float)) for v in plain.values()):
        return {str(k): float(v) for k, v in plain.items()}
    raise ValueError(f'{path}: no per-class {metric} values (keys like "sem_seg/{metric}-<class>"); '
                     'evaluate with classwise=True')


def read_class_list(path: str | Path) -> list[str]:
    names = []
    for line in Path(path).read_text().splitlines():
        line = line.strip()
        if line:
            names.append(line.split(':', 1)[1].split(',')[0].strip() if ':' in line else line)
    return names


def compare(a: dict[str, float], b: dict[str, float], classes: list[str] | None = None):
    """Rows (class, value_a, value_b, gain) over the shared classes, sorted by gain, largest first."""
    names = [c for c in (classes if classes is not None else sorted(set(a) | set(b)))]
    missing = [c for c in names if c not in a or c not in b]
    if missing:
        raise KeyError(f'classes missing from a run: {missing}')
    rows = [(c, a[c], b[c], b[c] - a[c]) for c in names]
    return sorted(rows, key=lambda r: -r[3])


def plot(rows, label_a: str, label_b: str, metric: str, out: str) -> None:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    import numpy as np
    x = np.arange(len(rows))
    fig, ax = plt.subplots(figsize=(max(6, 0.45 * len(rows) + 2), 4))
    ax.bar(x - 0.2, [r[1] for r in rows], 0.4, label=label_a, color='#9db4d6')
    ax.bar(x + 0.2, [r[2] for r in rows], 0.4, label=label_b, color='#e07b39')
    ax.set_xticks(x, [r[0] for r in rows], rotation=60, ha='right')
    ax.set_ylabel(metric)
    ax.legend()
    ax.set_title(f'per-class {metric}, sorted by gain ({label_b} − {label_a})')
    fig.tight_layout()
    fig.savefig(out, dpi=150)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('run_a')
    p.add_argument('run_b')
    p.add_argument('--classes', help='file with the classes to show (e.g. the novel ones)')
    p.add_argument('--metric', default='IoU', choices=['IoU', 'PQ', 'SQ', 'RQ', 'ACC'])
    p.add_argument('--labels', nargs=2, default=None, help='legend names (default: file stems)')
    p.add_argument('--out', required=True, help='output figure (.png/.pdf)')
    args = p.parse_args(argv)
    a, b = load_per_class(args.run_a, args.metric), load_per_class(args.run_b, args.metric)
    rows = compare(a, b, read_class_list(args.classes) if args.classes else None)
    labels = args.labels or [Path(args.run_a).stem, Path(args.run_b).stem]
    plot(rows, labels[0], labels[1], args.metric, args.out)
    for name, va, vb, gain in rows:
        print(f'{name:<24s} {va:7.2f} {vb:7.2f} {gain:+7.2f}')
    print(f'mean gain over {len(rows)} classes: {sum(r[3] for r in rows) / max(len(rows), 1):+.2f}; '
          f'figure: {args.out}')
    return 0


if __name__ == '__main__':
    run_tool(main)  # one-line user errors; --debug or OVSEG_DEBUG=1 shows the traceback
