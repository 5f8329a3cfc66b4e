"""Check an NSS ``processed_dataset/`` (seed 000 format): exit 0 when every scene is valid, 1 otherwise.

    python tools/nss/validate_dataset.py processed_dataset [--json report.json]
"""
from __future__ import annotations

import argparse
import json
import os.path as osp
import sys

sys.path.insert(0, osp.abspath(osp.join(osp.dirname(__file__), '..', '..')))

from ovseg.cli import run_tool  # noqa: E402
from projects.dreammask.dreammask.processed_format import validate_dataset  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('dir', help='processed_dataset directory')
    parser.add_argument('--json', help='write the report as JSON here')
    parser.add_argument('--max-errors', type=int, default=20, help='errors to print (all go to --json)')
    parser.add_argument('--allow-outside-root', action='store_true',
                        help='accept image / mask paths outside the dataset folder (absolute or ../)')
    args = parser.parse_args(argv)
    if not osp.isdir(args.dir):
        raise FileNotFoundError(f'dataset directory not found: {args.dir}')
    report = validate_dataset(args.dir, allow_outside_root=args.allow_outside_root)
    print(f"scenes: {report['scenes']}  objects: {report['objects']}  "
          f"categories: {len(report['categories'])}  errors: {len(report['errors'])}")
    for name, count in sorted(report['categories'].items(), key=lambda kv: -kv[1])[:20]:
        print(f'  {name}: {count}')
    for err in report['errors'][:args.max_errors]:
        print(f"ERROR {err['file']} [{err['field']}]: {err['message']}")
    if len(report['errors']) > args.max_errors:
        print(f"... {len(report['errors']) - args.max_errors} more errors (see --json)")
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(report, f, indent=1)
    return 0 if not report['errors'] else 1


if __name__ == '__main__':
    run_tool(main)  # one-line user errors; --debug or OVSEG_DEBUG=1 shows the traceback
