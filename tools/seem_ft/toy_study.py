"""The SEEM fine-tuning toy study: pretrain the tiny SEEM once, fine-tune it with each strategy, evaluate, tabulate.

    python tools/seem_ft/toy_study.py [--skip-pretrain] [--strategies frozen-backbone-decoder-adapter ...]
        [--out work_dirs/seem_toy_study]

Steps (each a ``tools/train.py`` / ``tools/test.py`` process, so the numbers are those of the documented commands):

1. ``seem_tiny_toy-pretrain.py`` → ``work_dirs/seem_tiny_toy-pretrain/iter_300.pth`` (unless ``--skip-pretrain``
   and the checkpoint exists);
2. zero-shot baseline: the pretrained checkpoint validated on the fine-tuning data (``evaluate_at_start=True`` of
   the ``frozen-backbone-full-decoder`` run gives PQ / mIoU before its first step) and its grounding cIoU / gIoU
   (``tools/test.py`` with the pretrained checkpoint);
3. per strategy: train (val PQ / mIoU at the end), then ``tools/test.py`` (grounding cIoU / gIoU).

Writes ``<out>/results.json`` and prints the markdown table of docs/seem_ft.md (PQ, mIoU, cIoU, gIoU, trainable %,
training wall time).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
STRATEGIES = ('frozen-backbone-decoder-adapter', 'frozen-backbone-full-decoder', 'backbone-adapter-decoder-adapter',
              'backbone-adapter-full-decoder')
LORA = ('frozen-backbone-decoder-lora', 'backbone-lora-decoder-lora')  # variants, run when asked for
SPATIAL = ('frozen-backbone-full-decoder-spatial',)  # + SEEM's spatial training, run when asked for
PRETRAIN = 'configs/seem_ft/seem_tiny_toy-pretrain.py'
PRETRAINED = 'work_dirs/seem_tiny_toy-pretrain/iter_300.pth'
METRIC_RE = re.compile(r'(panoptic/PQ|panoptic/PQ_th|panoptic/PQ_st|sem_seg/mIoU|refer/cIoU|refer/gIoU'
                       r'|interactive/NoC@\d+|interactive/mIoU@1): (-?[0-9.]+)')
TRAINABLE_RE = re.compile(r'Trainable parameters: ([0-9,]+) of ([0-9,]+) \(([0-9.]+) %\)')


def run(cmd: list[str], log: Path) -> tuple[str, float]:
    """Run a tool, tee its output to ``log``; returns (output, wall seconds)."""
    start = time.time()
    proc = subprocess.run([sys.executable, *cmd], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True)
    elapsed = time.time() - start
    log.write_text(proc.stdout)
    if proc.returncode:
        raise SystemExit(f'{" ".join(cmd)} failed ({proc.returncode}); see {log}')
    return proc.stdout, elapsed


def metrics(text: str) -> list[dict[str, float]]:
    """Every evaluation's metrics in order of appearance (one dict per ``Iter(val)`` / ``Iter(test)`` line)."""
    out = []
    for line in text.splitlines():
        if 'Iter(val)' in line or 'Iter(test)' in line:
            found = {k: float(v) for k, v in METRIC_RE.findall(line)}
            if found:
                out.append(found)
    return out


def trainable(text: str) -> dict[str, float]:
    m = TRAINABLE_RE.search(text)
    if m is None:
        return {}
    return dict(trainable=int(m[1].replace(',', '')), total=int(m[2].replace(',', '')), percent=float(m[3]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--skip-pretrain', action='store_true', help='reuse an existing pretrained checkpoint')
    parser.add_argument('--strategies', nargs='+', default=list(STRATEGIES), choices=STRATEGIES + LORA + SPATIAL)
    parser.add_argument('--out', default='work_dirs/seem_toy_study')
    parser.add_argument('--report', action='store_true', help='only re-read the logs in --out and print the table')
    args = parser.parse_args(argv)
    out = ROOT / args.out
    out.mkdir(parents=True, exist_ok=True)
    results: dict[str, dict] = {}
    if os.path.exists(out / 'results.json'):
        results = json.loads((out / 'results.json').read_text())

    def save() -> None:
        (out / 'results.json').write_text(json.dumps(results, indent=1))

    if args.report:
        for name in (*STRATEGIES, *LORA, *SPATIAL):
            for log, index in ((out / f'{name}_train.log', -1), (out / f'{name}_test.log', -1)):
                if name in results and log.is_file():
                    results[name].update(metrics(log.read_text())[index])
        if 'zero-shot-interactive' in results:
            results['zero-shot-interactive'].update(metrics((out / f'{SPATIAL[0]}_train.log').read_text())[0])
        if 'zero-shot' in results:
            results['zero-shot'].update(metrics((out / 'frozen-backbone-full-decoder_train.log').read_text())[0])
            results['zero-shot'].update(metrics((out / 'zero-shot_test.log').read_text())[-1])
        save()
        print(table(results))
        return 0

    if not (args.skip_pretrain and (ROOT / PRETRAINED).is_file()):
        text, secs = run(['tools/train.py', PRETRAIN], out / 'pretrain.log')
        results['pretrain'] = dict(**(metrics(text) or [{}])[-1], **trainable(text), train_s=round(secs))
        save()
    for name in args.strategies:
        config = f'configs/seem_ft/seem_tiny_toy-{name}.py'
        at_start = name in ('frozen-backbone-full-decoder', *SPATIAL)
        extra = ['--cfg-options', 'evaluate_at_start=True'] if at_start else []
        text, secs = run(['tools/train.py', config, *extra], out / f'{name}_train.log')
        evals = metrics(text)
        if name in SPATIAL:  # interactive scores of the pretrained model (its spatial path never trained)
            results['zero-shot-interactive'] = dict(**evals[0], trainable=0, percent=0.0)
        elif extra:  # the zero-shot baseline: the pretrained model on the fine-tuning val set, before the first step
            results['zero-shot'] = dict(**evals[0], trainable=0, percent=0.0)
            ztext, _ = run(['tools/test.py', config, PRETRAINED], out / 'zero-shot_test.log')
            results['zero-shot'].update(metrics(ztext)[-1])
        results[name] = dict(**evals[-1], **trainable(text), train_s=round(secs))
        ttext, _ = run(['tools/test.py', config, f'work_dirs/seem_tiny_toy-{name}/iter_150.pth'],
                       out / f'{name}_test.log')
        results[name].update(metrics(ttext)[-1])
        save()
    print(table(results))
    if any(name in results for name in SPATIAL):
        print(spatial_table(results))
    return 0


def spatial_table(results: dict[str, dict]) -> str:
    """Interactive scores (5 clicks per object on the toy val set) before / after spatial training."""
    rows = ['| model | NoC@50 | NoC@80 | NoC@85 | NoC@90 | mIoU@1 | PQ | mIoU | grounding cIoU | train time |',
            '|---|---|---|---|---|---|---|---|---|---|']
    nan = float('nan')
    for name in ('zero-shot-interactive', *SPATIAL):
        r = results.get(name)
        if not r:
            continue
        secs = f"{r['train_s'] / 60:.1f} min" if 'train_s' in r else '-'
        nocs = ' | '.join(f"{r.get(f'interactive/NoC@{t}', nan):.2f}" for t in (50, 80, 85, 90))
        rows.append(f"| {name} | {nocs} | {r.get('interactive/mIoU@1', nan):.1f} | {r.get('panoptic/PQ', nan):.1f} "
                    f"| {r.get('sem_seg/mIoU', nan):.1f} | {r.get('refer/cIoU', nan):.1f} | {secs} |")
    return '\n'.join(rows)


def table(results: dict[str, dict]) -> str:
    rows = ['| model | PQ | PQ things / stuff | mIoU | grounding cIoU | gIoU | trainable params (%) | train time |',
            '|---|---|---|---|---|---|---|---|']
    for name in ('zero-shot', *STRATEGIES, *LORA, *SPATIAL):
        r = results.get(name)
        if not r:
            continue
        pct = f"{r.get('trainable', 0):,} ({r.get('percent', 0.0):.2f} %)"
        secs = f"{r['train_s'] / 60:.1f} min" if 'train_s' in r else '-'
        nan = float('nan')
        rows.append(f"| {name} | {r.get('panoptic/PQ', nan):.1f} "
                    f"| {r.get('panoptic/PQ_th', nan):.1f} / {r.get('panoptic/PQ_st', nan):.1f} "
                    f"| {r.get('sem_seg/mIoU', nan):.1f} "
                    f"| {r.get('refer/cIoU', float('nan')):.1f} | {r.get('refer/gIoU', float('nan')):.1f} | {pct} "
                    f"| {secs} |")
    return '\n'.join(rows)


if __name__ == '__main__':
    sys.exit(main())
