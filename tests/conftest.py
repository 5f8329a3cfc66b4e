"""Shared pytest set-up: repo root on sys.path (for `projects.*`), single-threaded torch, clean registries."""
import os
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

# Two xdist workers share two cores: keep each worker single-threaded.
os.environ.setdefault('OMP_NUM_THREADS', '1')
import torch  # noqa: E402

torch.set_num_threads(1)


@pytest.fixture(scope='session')
def repo_root() -> Path:
    return REPO_ROOT
