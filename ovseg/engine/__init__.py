"""Engine pieces: training loops, hooks and optimizer-wrapper constructors."""
from . import hooks, optimizers  # noqa: F401
from .loops import ResumableIterBasedTrainLoop  # noqa: F401
