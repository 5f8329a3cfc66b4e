"""ovseg: an MMEngine-style toolkit for open-vocabulary segmentation."""
from .utils.torch_compat import allow_mmengine_checkpoints

__version__ = '0.1.0'

# mmengine 0.10.7 calls torch.load without weights_only; allow-list exactly the types its checkpoints hold.
allow_mmengine_checkpoints()
