"""Parameter-efficient fine-tuning: LoRA (peft) and bottleneck adapters, the trainable-set declaration.

Wrappers are registered in ``ovseg.registry.PEFT_WRAPPERS`` and named by the top-level ``peft`` config key;
``OVSegRunner`` applies them, then ``trainable_params``, before the model is wrapped for DDP.
"""
from .adapters import AttachedAdapter, BottleneckAdapter, BottleneckAdapters
from .builder import apply_peft, configure_trainable
from .lora import (
                   LoRA,
                   adapt_base_state_dict,
                   base_key,
                   infer_lora_metadata,
                   lora_metadata,
                   lora_state_dict,
                   merge_lora,
                   merge_lora_state_dict,
)
from .trainable import ParamRow, apply_trainable_params, format_parameter_table, parameter_table, trainable_state_dict

__all__ = ['AttachedAdapter', 'BottleneckAdapter', 'BottleneckAdapters', 'LoRA', 'ParamRow',
           'adapt_base_state_dict', 'apply_peft', 'apply_trainable_params', 'base_key', 'configure_trainable',
           'format_parameter_table', 'infer_lora_metadata', 'lora_metadata', 'lora_state_dict', 'merge_lora',
           'merge_lora_state_dict', 'parameter_table', 'trainable_state_dict']
