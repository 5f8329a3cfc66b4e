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


def pytest_configure(config: pytest.Config) -> None:
    """Build yapf's grammar pickle (mmengine.config imports yapf) once, in the xdist controller.

    yapf writes that pickle to the user cache on first import; on a fresh machine two workers importing mmengine
    at once raced on it, and one read a half-written file (EOFError while collecting). The controller configures
    before it starts the workers, so they find the finished cache.
    """
    if not hasattr(config, 'workerinput'):
        import mmengine.config  # noqa: F401


@pytest.fixture(scope='session')
def repo_root() -> Path:
    return REPO_ROOT
