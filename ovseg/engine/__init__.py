"""Engine pieces: the ovseg runners (plain and flexible/FSDP), training loops, hooks, optimizer-wrapper
constructors, EMA."""
from . import hooks, optimizers  # noqa: F401
from .flexible_runner import OVSegFlexibleRunner  # noqa: F401
from .fsdp import OVSegFSDPStrategy  # noqa: F401
from .loops import ResumableIterBasedTrainLoop  # noqa: F401
from .optimizers import TrainableParamsOptimWrapperConstructor, build_trainable_optim_wrapper  # noqa: F401
from .runner import OVSegRunner  # noqa: F401
from .trainable_ema import TrainableEMA  # noqa: F401
