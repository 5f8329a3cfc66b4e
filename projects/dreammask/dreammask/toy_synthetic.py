"""Toy synthetic scenes in NSS ``processed_dataset`` format, for the CPU DreamMask default.

They stand in for the NSS pipeline: scenes that feature the classes withheld from the real ToyScenes training
split (e.g. ``star``, ``water``), every visible segment written as an object (box, binary mask, clip_score = 1,
mask_uncertainty = 0 since masks are exact). The real pipeline is ``tools/nss/run.py``; both write the same
format, which ``tools/nss/validate_dataset.py`` checks.

``style`` decides whether there is a synthetic-real domain gap, the gap SRA is meant to close:

* ``'flat'`` (default): the scene layout of ToyScenes' painter, rendered in another style: flat class colours
  (no stuff textures, no shading on things, no colour jitter), a warm colour cast with a horizontal
  illumination ramp (the real scenes have neutral light and only the sky's vertical gradient), a slight blur
  and Gaussian sensor noise (the real scenes are noise-free). Synthetic water is a flat blue; real water
  ripples.
* ``'toy'``: ToyScenes' own painter, i.e. no gap (what the toy used before; a control).

Generated data is cached in ``out_dir`` with its parameters in ``meta.json``; a directory generated with other
parameters is refused, one from before styles existed (no ``meta.json``) is regenerated.
"""
from __future__ import annotations

import argparse
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import Image

from ovseg.datasets.toy_scenes import CLASSES, NAME_TO_ID, _file_lock, render_scene
from ovseg.utils.atomic_io import build_dir_atomically

GENERATOR_VERSION = 2  # 1: ToyScenes' painter, no meta.json; 2: styles + meta.json
STYLES = ('flat', 'toy')


def render_flat(layers: list[tuple[int, np.ndarray]], size: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """Re-render a ToyScenes layout (``[(class index, visible mask)]``) in the synthetic ``'flat'`` style."""
    h, w = size
    img = np.zeros((h, w, 3), np.float32)
    for cls, mask in layers:
        img[mask] = CLASSES[cls].color  # flat colour: no texture, no shading, no jitter
    cast = rng.uniform((1.05, 0.88, 0.68), (1.2, 1.0, 0.82)).astype(np.float32)  # warm light
    ramp = np.linspace(rng.uniform(0.65, 0.8), rng.uniform(1.1, 1.25), w, dtype=np.float32)
    if rng.random() < 0.5:
        ramp = ramp[::-1]
    img = img * cast[None, None, :] * ramp[None, :, None]
    img = cv2.GaussianBlur(img, (0, 0), sigmaX=0.8)
    img += rng.normal(0.0, 8.0, img.shape).astype(np.float32)
    return np.clip(img + 0.5, 0, 255).astype(np.uint8)


def _params(classes: Sequence[str], num_scenes: int, size: int, seed: int, style: str) -> dict[str, Any]:
    for name in classes:
        if name not in NAME_TO_ID:
            raise ValueError(f'{name!r} is not a ToyScenes class')
    if style not in STYLES:
        raise ValueError(f'style must be one of {STYLES}, got {style!r}')
    return dict(generator_version=GENERATOR_VERSION, classes=list(classes), num_scenes=int(num_scenes),
                size=int(size), seed=int(seed), style=style)


def _on_disk(out: Path) -> dict | str | None:
    """The parameters of a finished copy in ``out``; ``'legacy'`` for one from GENERATOR_VERSION 1; None."""
    if (out / 'meta.json').is_file():
        return json.loads((out / 'meta.json').read_text())
    if (out / '.complete').exists():
        return 'legacy'
    return None


def _check(out: Path, found: dict | str | None, params: dict) -> bool:
    """True if ``out`` holds exactly ``params``; raise if it holds other parameters."""
    if isinstance(found, dict):
        if found == params:
            return True
        diff = ', '.join(f'{k}: on disk {found.get(k)!r} vs requested {params.get(k)!r}'
                         for k in sorted(set(found) | set(params)) if found.get(k) != params.get(k))
        raise ValueError(f'{out} holds toy synthetic scenes generated with other parameters ({diff}); delete it '
                         'or use another data_root')
    return False


def _write(tmp: Path, params: dict) -> None:
    idx = {c.name: i for i, c in enumerate(CLASSES)}
    classes = params['classes']
    wanted_things = [idx[n] for n in classes if CLASSES[idx[n]].isthing]
    wanted_bottoms = [idx[n] for n in classes if not CLASSES[idx[n]].isthing and CLASSES[idx[n]].kind == 'bottom']
    tops = [i for i, c in enumerate(CLASSES) if c.kind == 'top']
    bottoms = wanted_bottoms or [i for i, c in enumerate(CLASSES) if c.kind == 'bottom']
    things = wanted_things or [i for i, c in enumerate(CLASSES) if c.isthing]
    size = (params['size'], params['size'])
    rng = np.random.default_rng(params['seed'])
    (tmp / 'images').mkdir()
    (tmp / 'masks').mkdir()
    for s in range(params['num_scenes']):
        img, layers = render_scene(rng, size, things, tops, bottoms, 1, 3)
        if params['style'] == 'flat':
            img = render_flat(layers, size, rng)
        sid = f'scene_{s:05d}'
        Image.fromarray(img).save(tmp / 'images' / f'real_{s:05d}.png')
        objects = []
        for k, (cls, mask) in enumerate(layers):
            if not mask.any():
                continue
            ys, xs = np.nonzero(mask)
            mpath = f'masks/{sid}_obj_{k:02d}.png'
            Image.fromarray(mask.astype(np.uint8) * 255).save(tmp / mpath)
            objects.append(dict(index=k, name=CLASSES[cls].name,
                                box=dict(x=int(xs.min()), y=int(ys.min()), w=int(xs.max() - xs.min() + 1),
                                         h=int(ys.max() - ys.min() + 1)),
                                mask_path=mpath, clip_score=1.0, mask_uncertainty=0.0))
        rec = dict(scene_id=sid, real_image=f'images/real_{s:05d}.png', canvas_width=size[1],
                   canvas_height=size[0], objects=objects)
        (tmp / f'{sid}.json').write_text(json.dumps(rec, indent=1))
    (tmp / 'meta.json').write_text(json.dumps(params, indent=1, sort_keys=True))
    (tmp / '.complete').write_text('ok')


def generate_toy_synthetic(out_dir: str | os.PathLike, classes: Sequence[str] = ('star', 'water'),
                           num_scenes: int = 100, size: int = 128, seed: int = 1, style: str = 'flat') -> Path:
    """Write ``num_scenes`` scenes in which the given (novel) classes appear, unless ``out_dir`` has them.

    Safe with several processes: a file lock serialises them, the data is written to a temporary sibling and
    renamed into place."""
    params = _params(classes, num_scenes, size, seed, style)
    out = Path(out_dir)
    if _check(out, _on_disk(out), params):
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    with _file_lock(out.parent / f'.{out.name}.lock'):
        found = _on_disk(out)
        if _check(out, found, params):
            return out
        if found is None and out.exists() and any(out.iterdir()):
            raise FileExistsError(f'{out} exists but holds no toy synthetic scenes (no meta.json / .complete); '
                                  'delete it or use another data_root')
        # replace: an empty directory, or version-1 scenes generated before styles existed
        build_dir_atomically(out, lambda tmp: _write(tmp, params), replace=True)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('out_dir')
    p.add_argument('--classes', nargs='+', default=['star', 'water'])
    p.add_argument('--num-scenes', type=int, default=100)
    p.add_argument('--size', type=int, default=128)
    p.add_argument('--seed', type=int, default=1)
    p.add_argument('--style', choices=STYLES, default='flat')
    a = p.parse_args(argv)
    print(generate_toy_synthetic(a.out_dir, a.classes, a.num_scenes, a.size, a.seed, a.style))
    return 0


if __name__ == '__main__':
    raise SystemExit(main())


def _register_dataset():
    from ovseg.registry import DATASETS

    from .nss_scene_dataset import NSSSceneDataset

    @DATASETS.register_module()
    class ToyNSSSceneDataset(NSSSceneDataset):
        """``NSSSceneDataset`` over toy synthetic scenes generated on first use (``generate`` kwargs, e.g.
        ``dict(classes=['star', 'water'], style='flat')``)."""

        def __init__(self, data_root: str, generate: dict | None = None, **kwargs) -> None:
            generate_toy_synthetic(data_root, **(generate or {}))
            super().__init__(data_root=data_root, **kwargs)

    return ToyNSSSceneDataset


ToyNSSSceneDataset = _register_dataset()
