"""SEEM demo: segment what visual or text prompts point at (or a class list) on one image and draw the masks.

    python tools/seem_demo.py IMAGE --config configs/seem_ft/_base_/seem_focalt_model.py \
        --checkpoint seem_focalt_v1_ovseg.pth [--points x,y ...] [--box x0,y0,x1,y1 ...] \
        [--scribble FILE.png ...] [--text "the dog on the left" ...] [--classes cat,dog,grass] --out OUT.png

* ``--points`` / ``--box`` / ``--scribble``: one mask per prompt (``SEEM.predict_spatial``: each point is a click,
  a box its filled region, a scribble the non-zero pixels of a PNG of the image size);
* ``--text``: one mask per sentence (``SEEM.predict_grounding``, SEEM's referring path);
* ``--classes``: panoptic segmentation with these class names (comma-separated; no other prompt allowed).

Prompts of several kinds can be combined (they are drawn together, labelled by prompt). ``--checkpoint`` is a
converted SEEM checkpoint (``tools/model_converters/seem_to_ovseg.py``) or an ovseg training checkpoint; without it
the demo refuses unless ``--random-weights`` says an untrained model is intended (smoke tests).
"""
from __future__ import annotations

import argparse
import os
import os.path as osp
import sys
from collections.abc import Sequence

sys.path.insert(0, osp.abspath(osp.join(osp.dirname(__file__), '..')))

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from mmengine.config import Config  # noqa: E402
from mmengine.registry import init_default_scope  # noqa: E402
from mmengine.utils import import_modules_from_strings  # noqa: E402

from ovseg.cli import run_tool  # noqa: E402
from ovseg.engine.checkpoint_files import load_model_weights  # noqa: E402
from ovseg.models.peft import apply_peft  # noqa: E402
from ovseg.registry import MODELS  # noqa: E402
from ovseg.structures import SegDataSample  # noqa: E402
from ovseg.visualization import default_palette, draw_panoptic  # noqa: E402


def _numbers(text: str, count: int, what: str) -> tuple[float, ...]:
    parts = [p for p in text.replace(' ', '').split(',') if p]
    if len(parts) != count:
        raise ValueError(f'{what} must be {count} comma-separated numbers, got {text!r}')
    try:
        return tuple(float(p) for p in parts)
    except ValueError:
        raise ValueError(f'{what} must be numbers, got {text!r}') from None


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description='SEEM: masks for points / boxes / scribbles / text / classes')
    p.add_argument('image')
    p.add_argument('--config', required=True, help='an ovseg SEEM config (configs/seem_ft/...)')
    p.add_argument('--checkpoint', default=None, help='converted SEEM or ovseg checkpoint')
    p.add_argument('--random-weights', action='store_true', help='run without --checkpoint (smoke tests only)')
    p.add_argument('--points', nargs='+', default=[], metavar='X,Y', help='clicks, one prompt each')
    p.add_argument('--box', nargs='+', default=[], metavar='X0,Y0,X1,Y1', help='boxes, one prompt each')
    p.add_argument('--scribble', nargs='+', default=[], metavar='FILE', help='stroke images (non-zero = stroke)')
    p.add_argument('--text', nargs='+', default=[], help='referring sentences, one mask each')
    p.add_argument('--classes', default=None, help='comma-separated class names: panoptic segmentation')
    p.add_argument('--out', required=True, help='output image (.png / .jpg)')
    p.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    p.add_argument('--seed', type=int, default=0, help="seed of SEEM's random point / query draws")
    p.add_argument('--alpha', type=float, default=0.55)
    return p.parse_args(argv)


def build_model(config: str, checkpoint: str | None, random_weights: bool, device: str) -> torch.nn.Module:
    cfg = Config.fromfile(config)
    if cfg.get('custom_imports'):
        import_modules_from_strings(**cfg['custom_imports'])
    init_default_scope(cfg.get('default_scope', 'ovseg'))
    model_cfg = dict(cfg.model)
    model_cfg['criterion'] = None
    model = MODELS.build(model_cfg)
    if not hasattr(model, 'predict_spatial'):
        raise ValueError(f'{config}: the model is {type(model).__name__}, not SEEM')
    # a fine-tuning config's adapters / LoRA (its `peft` key), so its checkpoints load with them
    apply_peft(model, cfg.get('peft'))
    if checkpoint:
        load_model_weights(model, checkpoint, warn=lambda msg: print(f'warning: {msg}', file=sys.stderr))
    elif not random_weights:
        raise ValueError('no --checkpoint: pass one (tools/model_converters/seem_to_ovseg.py converts the '
                         'released weights) or --random-weights for an untrained model')
    return model.to(device).eval()


def read_image(path: str) -> np.ndarray:
    img = cv2.imread(path, cv2.IMREAD_COLOR)
    if img is None:
        raise OSError(2, 'cannot read image', path)
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def read_scribble(path: str, hw: tuple[int, int]) -> np.ndarray:
    img = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    if img is None:
        raise OSError(2, 'cannot read scribble', path)
    if img.ndim == 3:
        img = img.max(axis=2)
    if img.shape[:2] != hw:
        raise ValueError(f'scribble {path} is {img.shape[1]}×{img.shape[0]} but the image is {hw[1]}×{hw[0]}')
    return img != 0


def masks_to_panoptic(masks: Sequence[np.ndarray], hw: tuple[int, int]) -> tuple[np.ndarray, list[dict]]:
    """Binary masks → an id map (later masks drawn over earlier ones) + segments for ``draw_panoptic``."""
    pan = np.zeros(hw, dtype=np.int32)
    for i, m in enumerate(masks):
        pan[m] = i + 1
    return pan, [dict(id=i + 1, category_id=i, isthing=False) for i in range(len(masks))]


def run(args: argparse.Namespace) -> dict:
    prompts = bool(args.points or args.box or args.scribble or args.text)
    if args.classes and prompts:
        raise ValueError('--classes (panoptic) cannot be combined with --points/--box/--scribble/--text')
    if not args.classes and not prompts:
        raise ValueError('nothing to segment: give --points, --box, --scribble, --text or --classes')
    torch.manual_seed(args.seed)
    model = build_model(args.config, args.checkpoint, args.random_weights, args.device)
    image = read_image(args.image)
    hw = image.shape[:2]
    if args.classes:
        classes = [c.strip() for c in args.classes.split(',') if c.strip()]
        if not classes:
            raise ValueError('--classes is empty')
        model.set_vocabulary(classes, [True] * len(classes), split='test')
        ds = SegDataSample(metainfo=dict(img_shape=hw, ori_shape=hw))
        data = model.data_preprocessor(dict(inputs=[torch.from_numpy(image).permute(2, 0, 1)], data_samples=[ds]))
        with torch.no_grad():
            result = model.predict(data['inputs'], data['data_samples'])[0]
        pan = result.pred_panoptic_seg.data[0].cpu().numpy()
        segments = result.metainfo['pred_segments_info']
        drawn = draw_panoptic(image, pan, segments, classes, default_palette(len(classes)), alpha=args.alpha)
        labels = [classes[s['category_id']] for s in segments]
    else:
        masks, labels = [], []
        if args.points or args.box or args.scribble:
            points = [_numbers(p, 2, '--points entry') for p in args.points]
            boxes = [_numbers(b, 4, '--box') for b in args.box]
            scribbles = [read_scribble(s, hw) for s in args.scribble]
            gen = torch.Generator().manual_seed(args.seed)
            spatial = model.predict_spatial(image, points=points or None, boxes=boxes or None,
                                            scribbles=scribbles or None, generator=gen)
            masks += list(spatial.cpu().numpy())
            labels += ([f'point {x:g},{y:g}' for x, y in points] + [f'box {i}' for i in range(len(boxes))]
                       + [osp.basename(s) for s in args.scribble])
        if args.text:
            masks += list(model.predict_grounding(image, args.text).cpu().numpy())
            labels += list(args.text)
        pan, segments = masks_to_panoptic(masks, hw)
        drawn = draw_panoptic(image, pan, segments, labels, default_palette(len(labels)), alpha=args.alpha)
    out_dir = osp.dirname(osp.abspath(args.out))
    os.makedirs(out_dir, exist_ok=True)
    if not cv2.imwrite(args.out, cv2.cvtColor(drawn, cv2.COLOR_RGB2BGR)):
        raise OSError(5, 'cannot write image', args.out)
    return dict(labels=labels, out=args.out)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    summary = run(args)
    print(f"drew {len(summary['labels'])} masks ({', '.join(summary['labels'])}) -> {summary['out']}")
    return 0


if __name__ == '__main__':
    run_tool(main)  # one-line user errors; --debug or OVSEG_DEBUG=1 shows the traceback
