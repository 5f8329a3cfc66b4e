"""Trainable parameters of every SEEM fine-tuning strategy at real size (Focal-T, Focal-L), built on the meta device.

    python tools/seem_ft/strategy_table.py [--models focalt focall] [--strategies ...]

Prints the markdown table of docs/seem_ft.md: trainable / total parameters and % per strategy, and which top-level
modules train. No weights are needed or allocated (``torch.device('meta')``).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mmengine.config import Config

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import projects.seem_ft.seem_ft  # noqa: E402,F401  (registers SEEM and the strategy wrappers)
from projects.seem_ft.seem_ft.strategies import strategy_summary  # noqa: E402

STRATEGIES = ('frozen-backbone-decoder-adapter', 'frozen-backbone-full-decoder', 'backbone-adapter-decoder-adapter',
              'backbone-adapter-full-decoder', 'frozen-backbone-decoder-lora', 'backbone-lora-decoder-lora',
              'frozen-backbone-full-decoder-spatial')


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--models', nargs='+', default=['focalt', 'focall'], choices=['tiny', 'focalt', 'focall'])
    parser.add_argument('--strategies', nargs='+', default=list(STRATEGIES), choices=STRATEGIES)
    args = parser.parse_args(argv)
    print('| model | strategy | trainable | total | % | modules that train |')
    print('|---|---|---|---|---|---|')
    for name in args.models:
        model_cfg = Config.fromfile(str(ROOT / f'configs/seem_ft/_base_/seem_{name}_model.py')).model
        for strategy in args.strategies:
            cfg = Config.fromfile(str(ROOT / f'configs/seem_ft/_base_/strategy_{strategy}.py'))
            s = strategy_summary(model_cfg, cfg.get('peft'), cfg.get('trainable_params'))
            mods = ', '.join(f'{m} {t:,}' for m, (t, _) in s['per_module'].items() if t)
            print(f"| {name} | {strategy} | {s['trainable']:,} | {s['total']:,} | {s['percent']:.2f} | {mods} |")
    return 0


if __name__ == '__main__':
    sys.exit(main())
