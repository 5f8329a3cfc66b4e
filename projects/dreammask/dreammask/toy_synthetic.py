"""Toy synthetic scenes in NSS ``processed_dataset`` format, rendered by ToyScenes' own painter.

This stands in for the NSS pipeline on the CPU default: scenes that feature the classes withheld from the
real ToyScenes training split (e.g. ``star``, ``water``), with every visible segment written as an object
(box, binary mask, clip_score = 1, mask_uncertainty = 0 since masks are exact). The real pipeline is
``tools/nss/run.py``; both write the same format, which ``tools/nss/validate_dataset.py`` checks.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image

from ovseg.datasets.toy_scenes import CLASSES, NAME_TO_ID, render_scene


def generate_toy_synthetic(out_dir: str | os.PathLike, classes: Sequence[str] = ('star', 'water'),
                           num_scenes: int = 100, size: int = 128, seed: int = 1) -> Path:
    """Write ``num_scenes`` scenes where the given (novel) classes appear in every image; atomic."""
    out = Path(out_dir)
    if (out / '.complete').exists():
        return out
    for name in classes:
        if name not in NAME_TO_ID:
            raise ValueError(f'{name!r} is not a ToyScenes class')
    idx = {c.name: i for i, c in enumerate(CLASSES)}
    wanted_things = [idx[n] for n in classes if CLASSES[idx[n]].isthing]
    wanted_bottoms = [idx[n] for n in classes if not CLASSES[idx[n]].isthing and CLASSES[idx[n]].kind == 'bottom']
    tops = [i for i, c in enumerate(CLASSES) if c.kind == 'top']
    bottoms = wanted_bottoms or [i for i, c in enumerate(CLASSES) if c.kind == 'bottom']
    things = wanted_things or [i for i, c in enumerate(CLASSES) if c.isthing]
    rng = np.random.default_rng(seed)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix='.toy_synthetic_'))
    (tmp / 'images').mkdir()
    (tmp / 'masks').mkdir()
    for s in range(num_scenes):
        img, layers = render_scene(rng, (size, size), things, tops, bottoms, 1, 3)
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
        rec = dict(scene_id=sid, real_image=f'images/real_{s:05d}.png', canvas_width=size, canvas_height=size,
                   objects=objects)
        (tmp / f'{sid}.json').write_text(json.dumps(rec, indent=1))
    (tmp / '.complete').write_text('ok')
    try:
        tmp.rename(out)
    except OSError:  # another process finished first
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('out_dir')
    p.add_argument('--classes', nargs='+', default=['star', 'water'])
    p.add_argument('--num-scenes', type=int, default=100)
    p.add_argument('--size', type=int, default=128)
    p.add_argument('--seed', type=int, default=1)
    a = p.parse_args(argv)
    print(generate_toy_synthetic(a.out_dir, a.classes, a.num_scenes, a.size, a.seed))
    return 0


if __name__ == '__main__':
    raise SystemExit(main())


def _register_dataset():
    from ovseg.registry import DATASETS

    from .nss_scene_dataset import NSSSceneDataset

    @DATASETS.register_module()
    class ToyNSSSceneDataset(NSSSceneDataset):
        """``NSSSceneDataset`` over toy synthetic scenes generated on first use (``generate`` kwargs)."""

        def __init__(self, data_root: str, generate: dict | None = None, **kwargs) -> None:
            generate_toy_synthetic(data_root, **(generate or {}))
            super().__init__(data_root=data_root, **kwargs)

    return ToyNSSSceneDataset


ToyNSSSceneDataset = _register_dataset()
