"""Optimizer-wrapper constructors: only trainable parameters enter the optimizer (the default of ovseg runs), and
parameter groups as the reproduced systems build them (detectron2's ``build_optimizer`` for FC-CLIP)."""
from .detectron2_optim_constructor import Detectron2OptimWrapperConstructor, detectron2_param_groups
from .trainable_params_constructor import (
                                           TrainableParamsOptimWrapperConstructor,
                                           build_trainable_optim_wrapper,
                                           frozen_params_in_optimizer,
)

__all__ = ['Detectron2OptimWrapperConstructor', 'TrainableParamsOptimWrapperConstructor',
           'build_trainable_optim_wrapper', 'detectron2_param_groups', 'frozen_params_in_optimizer']
