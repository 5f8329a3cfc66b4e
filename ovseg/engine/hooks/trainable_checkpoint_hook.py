"""Checkpoints that hold only what trains (LoRA, heads, ...) plus buffers, for models whose frozen weights come
from elsewhere (a released model folder, ``load_from``).

Why: a Sa2VA-4B checkpoint with its frozen LLM, ViT and SAM2 is ~8 GB per save; the trained part is a few
hundred MB. The frozen weights are rebuilt when the model is built (release folder) or loaded (``load_from``),
so a resume needs only the rest. ``meta['trainable_only']`` marks such a file; resuming checks that exactly the
frozen parameters are absent (``ovseg.engine.checkpoint_files.check_fit``), so a checkpoint of another model or
another trainable set is still refused.
"""
from __future__ import annotations

from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from ovseg.registry import HOOKS

from ..fsdp import clean_param_name


@HOOKS.register_module()
class TrainableCheckpointHook(Hook):
    """Drop frozen parameters from every checkpoint the runner saves (keep trainable ones and all buffers).

    Works under FSDP (``OVSegFSDPStrategy``, ``use_orig_params=True``, ``state_dict_cfg='full'``): parameter names
    are compared without FSDP's ``_fsdp_wrapped_module.`` segments, as the full state dict names them.
    """

    priority = 'VERY_LOW'  # after hooks that add to the checkpoint (EMA, ...)

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        frozen = {clean_param_name(name) for name, p in model.named_parameters() if not p.requires_grad}
        state = checkpoint['state_dict']
        kept = type(state)((k, v) for k, v in state.items() if k not in frozen)
        if hasattr(state, '_metadata'):
            kept._metadata = state._metadata
        checkpoint['state_dict'] = kept
        checkpoint.setdefault('meta', {})['trainable_only'] = dict(dropped=len(state) - len(kept), kept=len(kept))
