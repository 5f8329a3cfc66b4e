"""Optimizer-wrapper constructors (parameter groups as the reproduced systems build them)."""
from .detectron2_optim_constructor import Detectron2OptimWrapperConstructor, detectron2_param_groups

__all__ = ['Detectron2OptimWrapperConstructor', 'detectron2_param_groups']
