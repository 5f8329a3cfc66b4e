"""Convert a released SEEM v1 checkpoint (``seem_focall_v1.pt`` / ``seem_focalt_v1.pt``) to an ovseg checkpoint.

    python tools/model_converters/seem_to_ovseg.py seem_focalt_v1.pt seem_focalt_v1_ovseg.pth \
        [--preset focalt|focall | --config CFG] [--strict]

The source is loaded weights-only (``torch.load(weights_only=True)``: a plain state dict, as released, or
``{'model': ...}`` / ``{'state_dict': ...}``). Keys map by prefix
(``ovseg.models.utils.seem_names.seem_to_ovseg_keys``):
``backbone.*`` → ``backbone.*``, ``sem_seg_head.pixel_decoder.*`` → ``pixel_decoder.*``,
``sem_seg_head.predictor.lang_encoder.*`` → ``text_encoder.*`` (open_clip nests ``resblocks`` under
``transformer``), the rest of ``sem_seg_head.predictor.*`` → ``transformer_decoder.*``. ``criterion.empty_weight``
(its length is the training vocabulary + 1) and ``dilation_kernel`` (a click-dilation buffer) are *ignored by
design*. The ovseg SEEM to check against is built on the meta device (no memory) from
``configs/seem_ft/_base_/seem_{preset}_model.py`` — the preset given or inferred from the backbone (stem width 96 +
depthwise ``dw1`` convs: Focal-T; 192 without: Focal-L) — or from ``--config``.

The conversion **refuses** a tensor whose shape differs from the model's (every mismatch is listed with both
shapes; SEEM's own loader silently skips them) and reports official keys the model has no place for and model keys
the checkpoint does not fill; ``--strict`` makes either an error. The output is
``{'state_dict': ..., 'meta': {'seem_converter': report}}`` for ``load_from`` / ``--checkpoint``.
"""
from __future__ import annotations

import argparse
import os.path as osp
import sys
from collections.abc import Mapping
from typing import Any

sys.path.insert(0, osp.abspath(osp.join(osp.dirname(__file__), '..', '..')))

import torch  # noqa: E402
from torch import Tensor  # noqa: E402

from ovseg.cli import run_tool  # noqa: E402
from ovseg.models.utils.checkpoint_convert import extract_state_dict, safe_load_checkpoint  # noqa: E402
from ovseg.models.utils.seem_names import seem_to_ovseg_keys  # noqa: E402

REPO_ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))
PRESET_CONFIGS = {'focalt': 'configs/seem_ft/_base_/seem_focalt_model.py',
                  'focall': 'configs/seem_ft/_base_/seem_focall_model.py'}


class ShapeMismatchError(ValueError):
    """Official tensors whose shapes differ from the ovseg model's."""


def infer_preset(state_dict: Mapping[str, Tensor]) -> str:
    """'focalt' / 'focall' from the backbone stem width and the depthwise ``dw1`` convs (focal_dw)."""
    stem = state_dict.get('backbone.patch_embed.proj.weight')
    if stem is None:
        raise ValueError('cannot infer the SEEM backbone: no backbone.patch_embed.proj.weight (not a SEEM '
                         'FocalNet checkpoint?); pass --preset or --config')
    depthwise = any('.dw1.' in k for k in state_dict if k.startswith('backbone.'))
    width = int(stem.shape[0])
    if width == 96 and depthwise:
        return 'focalt'
    if width == 192 and not depthwise:
        return 'focall'
    raise ValueError(f'backbone stem width {width} ({"with" if depthwise else "without"} depthwise convs) is '
                     'neither SEEM Focal-T (96, focal_dw) nor Focal-L (192, focal); pass --config')


def build_reference_model(config: str) -> torch.nn.Module:
    """The ovseg SEEM of ``config`` on the meta device (shapes only)."""
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmengine.utils import import_modules_from_strings

    from ovseg.registry import MODELS
    cfg = Config.fromfile(config)
    if cfg.get('custom_imports'):
        import_modules_from_strings(**cfg['custom_imports'])
    else:
        import projects.seem_ft.seem_ft  # noqa: F401
    init_default_scope(cfg.get('default_scope', 'ovseg'))
    model_cfg = dict(cfg.model)
    model_cfg['criterion'] = None  # inference weights only; the criterion holds no parameters anyway
    with torch.device('meta'):
        return MODELS.build(model_cfg)


def convert_seem_state_dict(official: Mapping[str, Tensor], model_state: Mapping[str, Tensor],
                            strict: bool = False) -> tuple[dict[str, Tensor], dict[str, Any]]:
    """Official SEEM state dict → (ovseg state dict, report); raises on shape mismatches (and, ``strict``, on
    unmatched official keys or model keys left unfilled)."""
    mapped, ignored, unmatched = seem_to_ovseg_keys(official)
    back = seem_to_ovseg_keys({k: k for k in official})[0]  # ovseg key -> official key
    mismatches, not_in_model, converted = [], [], {}
    for key, value in mapped.items():
        if key not in model_state:
            not_in_model.append(back.get(key, key))
            continue
        want = tuple(model_state[key].shape)
        if tuple(value.shape) != want:
            mismatches.append((back.get(key, key), key, tuple(value.shape), want))
            continue
        converted[key] = value
    missing = [k for k in model_state if k not in mapped]
    report = dict(num_source=len(official), num_converted=len(converted), ignored_by_design=ignored,
                  unmatched_official=unmatched + not_in_model, missing_in_model=missing,
                  shape_mismatches=[dict(official=o, ovseg=n, checkpoint=list(s), model=list(m))
                                    for o, n, s, m in mismatches])
    if mismatches:
        lines = '\n'.join(f'  {o} -> {n}: checkpoint {s} vs model {m}' for o, n, s, m in mismatches)
        raise ShapeMismatchError(f'{len(mismatches)} SEEM tensors do not fit the ovseg model (wrong preset or '
                                 f'config?); nothing was written:\n{lines}')
    if strict and report['unmatched_official']:
        raise ValueError(f"--strict: {len(report['unmatched_official'])} official keys have no place in the ovseg "
                         f"model: {report['unmatched_official'][:20]}")
    if strict and missing:
        raise ValueError(f'--strict: {len(missing)} ovseg keys are not in the checkpoint: {missing[:20]}')
    return converted, report


def summary(report: Mapping[str, Any]) -> str:
    lines = [f"converted {report['num_converted']} / {report['num_source']} tensors"]
    for name in ('ignored_by_design', 'unmatched_official', 'missing_in_model'):
        items = report[name]
        if items:
            more = ' ...' if len(items) > 20 else ''
            lines.append(f'{name} ({len(items)}): {items[:20]}{more}')
    return '\n'.join(lines)


def convert_file(src: str, dst: str, preset: str | None = None, config: str | None = None,
                 strict: bool = False) -> dict[str, Any]:
    official = extract_state_dict(safe_load_checkpoint(src))
    if config is None:
        preset = preset or infer_preset(official)
        config = osp.join(REPO_ROOT, PRESET_CONFIGS[preset])
    model = build_reference_model(config)
    converted, report = convert_seem_state_dict(official, model.state_dict(), strict=strict)
    report.update(source=osp.basename(src), preset=preset, config=osp.relpath(config, REPO_ROOT)
                  if osp.isabs(config) else config)
    torch.save({'state_dict': converted, 'meta': {'seem_converter': report}}, dst)
    return report


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description='Convert an official SEEM v1 checkpoint to ovseg names')
    p.add_argument('src', help='seem_focall_v1.pt / seem_focalt_v1.pt (loaded weights-only)')
    p.add_argument('dst', help='output .pth for mmengine load_from / the demo --checkpoint')
    group = p.add_mutually_exclusive_group()
    group.add_argument('--preset', choices=sorted(PRESET_CONFIGS), default=None,
                       help='model size (default: inferred from the backbone)')
    group.add_argument('--config', default=None, help='an ovseg SEEM config whose model to convert into')
    p.add_argument('--strict', action='store_true',
                   help='fail on official keys without a place in the model, or model keys not in the checkpoint')
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    report = convert_file(args.src, args.dst, preset=args.preset, config=args.config, strict=args.strict)
    print(summary(report))
    print(f'saved {args.dst}')
    return 0


if __name__ == '__main__':
    run_tool(main)  # one-line user errors; --debug or OVSEG_DEBUG=1 shows the traceback
