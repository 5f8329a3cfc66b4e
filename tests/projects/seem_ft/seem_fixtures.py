"""A tiny colour-mask dataset (2 images; classes: sky = stuff, ball = thing, grass = stuff; black = void) and the
converter loaded from its file, shared by the SEEM data tests."""
from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

import numpy as np
from PIL import Image

TOOLS = Path(__file__).resolve().parents[3] / 'tools/dataset_converters'

SKY, BALL, GRASS, VOID = (120, 180, 240), (220, 40, 40), (70, 150, 50), (0, 0, 0)
CLASS_TABLE = 'color,name,isthing\n120 180 240,sky,0\n#dc2828,ball,1\n70 150 50,grass,stuff\n'
#: (stem, image file, (h, w))
IMAGES = (('a', 'a.jpg', (20, 24)), ('b', 'b.png', (16, 16)))


def load_converter():
    spec = importlib.util.spec_from_file_location('colour_masks_to_seem', TOOLS / 'colour_masks_to_seem.py')
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is created
    spec.loader.exec_module(module)
    return module


def colour_masks() -> dict[str, np.ndarray]:
    """Image a: sky on top, grass below, two balls (raster order: upper-left first), a void column; image b: sky,
    one ball, void corner."""
    a = np.zeros((20, 24, 3), np.uint8)
    a[:8] = SKY
    a[8:] = GRASS
    a[2:6, 2:6] = BALL        # ball instance 1 (first in raster order)
    a[10:16, 14:20] = BALL    # ball instance 2
    a[:, 23] = VOID
    b = np.zeros((16, 16, 3), np.uint8)
    b[:] = SKY
    b[4:12, 4:10] = BALL
    b[12:, 12:] = VOID
    return {'a': a, 'b': b}


def write_inputs(root: Path, sentences: str | None = None, class_table: str = CLASS_TABLE) -> argparse.Namespace:
    """Write images, masks, class table (and sentences CSV) under ``root``; returns converter args."""
    (root / 'images').mkdir(parents=True)
    (root / 'masks').mkdir()
    masks = colour_masks()
    rng = np.random.default_rng(0)
    for stem, file_name, (h, w) in IMAGES:
        Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).save(root / 'images' / file_name)
        Image.fromarray(masks[stem]).save(root / 'masks' / f'{stem}.png')
    (root / 'classes.csv').write_text(class_table)
    argv = ['--images', str(root / 'images'), '--masks', str(root / 'masks'), '--classes', str(root / 'classes.csv'),
            '--out', str(root / 'out'), '--split', 'train']
    if sentences is not None:
        (root / 'sentences.csv').write_text(sentences)
        argv += ['--sentences', str(root / 'sentences.csv')]
    return argv


SENTENCES = ('image,color_or_segment,sentence\n'
             'a,120 180 240,The blue sky.\n'
             'a,#dc2828:2,the ball at the bottom right\n'
             'a.jpg,#dc2828:2,The lower ball\n'
             'a,2001,the ball at the top left\n'
             'b,#dc2828,the only ball\n')


def convert_fixture(root: Path, extra: list[str] = (), sentences: str | None = SENTENCES) -> Path:
    """Convert the fixture (with :data:`SENTENCES`); returns the output folder."""
    conv = load_converter()
    assert conv.main(write_inputs(root, sentences) + list(extra)) == 0
    return root / 'out'
