"""Cityscapes in-/out-of-vocabulary label configurations: panoptic train JSONs with thing classes deleted.

Configuration N deletes the segments of the first N label ids of the delete order (default
24, 25, 26, 27, 28, 31, 32, 33 = person, rider, car, truck, bus, train, motorcycle, bicycle; issue 10 part 1)
from every image's ``segments_info``; ``images``, the full ``categories`` list and every other segment stay
as they are. PNGs are not touched (none is written): train on ``<prefix>_NNN.json`` with
``CocoPanopticDataset(unlisted_segments='no_target')`` and evaluate on the FULL val JSON — panopticapi does not
treat a PNG id absent from the GT JSON as VOID.

Writes ``<out-dir>/<prefix>_000.json`` … (one per configuration, atomically) and
``<out-dir>/<prefix>_label_configs_summary.json`` / ``.md`` (segments and pixels removed per class per
configuration, with totals). Pixels are the segments' ``area`` in the JSON.

Example::

    python tools/dataset_converters/cityscapes_inout.py \\
        --panoptic-json data/cityscapes/gtFine/cityscapes_panoptic_train.json \\
        --out-dir data/cityscapes/gtFine/inout --configs 0-8
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os.path as osp
import sys
from collections.abc import Sequence
from typing import Any

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
from common import require_file  # noqa: E402

from ovseg.cli import run_tool  # noqa: E402
from ovseg.utils.atomic_io import atomic_write  # noqa: E402

REPO_ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))


def _load_label_configs():
    """``projects/inout_vocab/inout_vocab/label_configs.py`` by path: importing the project package would load
    torch and the segmentors, which a JSON rewrite does not need (standard-library module, no relative imports).
    """
    path = osp.join(REPO_ROOT, 'projects', 'inout_vocab', 'inout_vocab', 'label_configs.py')
    spec = importlib.util.spec_from_file_location('_inout_vocab_label_configs', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_lc = _load_label_configs()
CITYSCAPES_CATEGORY_IDS = _lc.CITYSCAPES_CATEGORY_IDS
CITYSCAPES_DELETE_ORDER = _lc.CITYSCAPES_DELETE_ORDER
check_categories, config_tag, delete_segments = _lc.check_categories, _lc.config_tag, _lc.delete_segments
deleted_ids, parse_config_list = _lc.deleted_ids, _lc.parse_config_list


def parse_delete_order(spec: str) -> tuple[int, ...]:
    """``'1,2,3'`` → ``(1, 2, 3)``; non-empty, integers, no repeats."""
    items = [s.strip() for s in spec.split(',')]
    if not spec.strip() or not all(s.isdigit() for s in items):
        raise ValueError(f'--delete-order: {spec!r} is not a comma-separated list of category ids (e.g. 24,25,26)')
    order = tuple(int(s) for s in items)
    dup = sorted({i for i in order if order.count(i) > 1})
    if dup:
        raise ValueError(f'--delete-order: category id(s) {dup} are listed twice in {spec!r}')
    return order


def read_json(path: str) -> dict:
    require_file(path, 'panoptic JSON')
    with open(path, encoding='utf-8') as f:
        try:
            raw = json.load(f)
        except json.JSONDecodeError as e:
            raise ValueError(f'{path}: not valid JSON ({e})') from None
    if not isinstance(raw, dict):
        raise ValueError(f'{path}: top level must be an object with images/annotations/categories')
    return raw


def _write_json(path: str, doc: Any) -> None:
    atomic_write(path, lambda f: f.write(json.dumps(doc).encode('utf-8')))


def _summary_markdown(summary: dict) -> str:
    lines = [f"# Label configurations of `{summary['source']}`", '',
             f"Delete order: {summary['delete_order']}. Pixels are the removed segments' `area` in the JSON.", '',
             '| config | deleted ids | deleted classes | segments removed | pixels removed | segments kept |',
             '|---|---|---|---:|---:|---:|']
    for tag, cfg in summary['configs'].items():
        t = cfg['totals']
        lines.append(f"| {tag} | {cfg['deleted_ids'] or '-'} | {', '.join(cfg['deleted_names']) or '-'} | "
                     f"{t['segments_removed']} | {t['pixels_removed']} | {t['segments_kept']} |")
    lines += ['', 'Per class (a class removes the same segments in every configuration that deletes it):', '',
              '| config | class (id) | segments removed | pixels removed |', '|---|---|---:|---:|']
    for tag, cfg in summary['configs'].items():
        for cid, c in cfg['classes'].items():
            lines.append(f"| {tag} | {c['name']} ({cid}) | {c['segments']} | {c['pixels']} |")
    return '\n'.join(lines) + '\n'


def convert(panoptic_json: str, out_dir: str, configs: Sequence[int],
            delete_order: Sequence[int] = CITYSCAPES_DELETE_ORDER, prefix: str | None = None) -> dict:
    """Write one JSON per configuration plus the summary files; returns the summary dict."""
    raw = read_json(panoptic_json)
    if tuple(delete_order) == CITYSCAPES_DELETE_ORDER:  # Cityscapes: exactly its 19 evaluated classes
        check_categories(raw, CITYSCAPES_CATEGORY_IDS, panoptic_json)
    else:  # custom order (e.g. ToyScenes thing ids): the ids must exist
        check_categories(raw, delete_order, panoptic_json, exact=False)
    prefix = prefix or osp.splitext(osp.basename(panoptic_json))[0]
    n_segments = sum(len(a.get('segments_info', [])) for a in raw.get('annotations', []))
    summary: dict[str, Any] = dict(source=panoptic_json, delete_order=list(delete_order),
                                   images=len(raw.get('images', [])), segments=n_segments, configs={})
    for n in configs:
        new, per_class = delete_segments(raw, deleted_ids(n, delete_order), panoptic_json)
        removed = sum(c['segments'] for c in per_class.values())
        pixels = sum(c['pixels'] for c in per_class.values())
        out = osp.join(out_dir, f'{prefix}_{config_tag(n)}.json')
        if osp.abspath(out) == osp.abspath(panoptic_json):
            raise ValueError(f'{out} would overwrite the input JSON; choose another --out-dir or --prefix')
        _write_json(out, new)
        summary['configs'][config_tag(n)] = dict(
            file=osp.basename(out), deleted_ids=list(per_class), deleted_names=[c['name'] for c in per_class.values()],
            classes={str(cid): c for cid, c in per_class.items()},
            totals=dict(segments_removed=removed, pixels_removed=pixels, segments_kept=n_segments - removed))
        print(f"config {config_tag(n)}: deleted {list(per_class) or '-'} "
              f"({', '.join(c['name'] for c in per_class.values()) or 'nothing'}): removed {removed} segments / "
              f'{pixels} pixels, kept {n_segments - removed} → {out}', file=sys.stderr, flush=True)
    base = osp.join(out_dir, f'{prefix}_label_configs_summary')
    _write_json(base + '.json', summary)
    atomic_write(base + '.md', lambda f: f.write(_summary_markdown(summary).encode('utf-8')))
    print(f'summary: {base}.json / .md', file=sys.stderr)
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--panoptic-json', required=True, help='full panoptic train JSON (cityscapesscripts)')
    parser.add_argument('--out-dir', required=True, help='folder for <prefix>_NNN.json and the summary')
    parser.add_argument('--configs', default=None,
                        help='configurations, e.g. 0-8, 0,3,8 or 2-4,8 (default: all, 0..len(delete order))')
    parser.add_argument('--delete-order', default=','.join(map(str, CITYSCAPES_DELETE_ORDER)),
                        help='category ids in deletion order (default: the Cityscapes things, issue 10)')
    parser.add_argument('--prefix', default=None,
                        help='output file prefix (default: the input file name without .json, e.g. '
                             'cityscapes_panoptic_train)')
    args = parser.parse_args(argv)
    order = parse_delete_order(args.delete_order)
    configs = parse_config_list(args.configs if args.configs is not None else f'0-{len(order)}', len(order))
    convert(args.panoptic_json, args.out_dir, configs, order, args.prefix)
    return 0


if __name__ == '__main__':
    run_tool(main)  # one-line user errors; --debug or OVSEG_DEBUG=1 shows the traceback
