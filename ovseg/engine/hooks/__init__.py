"""Hooks registered into ovseg.registry.HOOKS."""
from .checkpoint_hook import AtomicCheckpointHook  # noqa: F401  (registered as 'CheckpointHook')
from .seg_visualization_hook import SegVisualizationHook  # noqa: F401
from .trainable_checkpoint_hook import TrainableCheckpointHook  # noqa: F401
from .trainable_ema_hook import TrainableEMAHook  # noqa: F401
from .vocabulary_hook import VocabularyHook  # noqa: F401
