"""Engine pieces: training loops and hooks."""
from . import hooks  # noqa: F401
from .loops import ResumableIterBasedTrainLoop  # noqa: F401
