"""Tiny FC-CLIP builders shared by the in-/out-of-vocabulary tests (the toy study's architecture, random weights)."""
from pathlib import Path

import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope

import ovseg.models  # noqa: F401  (registers the FC-CLIP modules)
import projects.inout_vocab.inout_vocab  # noqa: F401
from ovseg.registry import MODELS

REPO_ROOT = Path(__file__).resolve().parents[3]
TOY_BASE = REPO_ROOT / 'configs/inout_vocab/_base_/inout_fcclip-tiny_toy.py'
TOY_GENERATE = dict(num_train=4, num_val=2, size=(128, 128), seed=0, novel_classes=[])


def tiny_model_cfg() -> dict:
    return Config.fromfile(str(TOY_BASE)).model.to_dict()


def build_tiny(seed: int, **overrides):
    init_default_scope('ovseg')
    torch.manual_seed(seed)
    return MODELS.build(dict(tiny_model_cfg(), **overrides))


