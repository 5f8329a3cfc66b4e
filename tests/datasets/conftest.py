"""Fixtures for dataset tests: one small ToyScenes copy per session, plus writable copies for corruption."""
import json
import shutil
from pathlib import Path

import pytest

from ovseg.datasets import ensure_toy_scenes

TOY_PARAMS = dict(num_train=12, num_val=6, size=(64, 80), seed=3, novel_classes=['star', 'water'])


@pytest.fixture(scope='session')
def toy_root(tmp_path_factory) -> Path:
    """Read-only ToyScenes (64x80, 12 train / 6 val, 'star' and 'water' novel)."""
    return ensure_toy_scenes(tmp_path_factory.mktemp('toy') / 'toy_scenes', **TOY_PARAMS)


@pytest.fixture()
def toy_copy(toy_root, tmp_path) -> Path:
    """A private copy tests may corrupt."""
    dst = tmp_path / 'toy_copy'
    shutil.copytree(toy_root, dst)
    return dst


def _edit_json(path: Path, fn) -> None:
    doc = json.loads(path.read_text())
    fn(doc)
    path.write_text(json.dumps(doc))


@pytest.fixture()
def edit_json():
    """``edit_json(path, fn)``: load a JSON file, let ``fn`` mutate it in place, write it back."""
    return _edit_json
