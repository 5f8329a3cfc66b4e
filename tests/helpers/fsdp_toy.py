"""A small MLP regressor with a trunk to freeze / LoRA-adapt and a trainable head, for the FSDP tests."""
from __future__ import annotations

import torch
from mmengine.model import BaseModel
from torch import nn

from ovseg.registry import MODELS


@MODELS.register_module(force=True)
class ToyMLPRegressor(BaseModel):
    """``trunk`` (two Linear layers) + ``head``; the loss is the MSE to the ToyRegressionDataset target."""

    def __init__(self, dim: int = 8, hidden: int = 32, **kwargs) -> None:
        super().__init__(**kwargs)
        self.trunk = nn.Sequential(nn.Linear(dim, hidden), nn.Tanh(), nn.Linear(hidden, hidden), nn.Tanh())
        self.head = nn.Linear(hidden, 1)

    def forward(self, inputs, target=None, index=None, mode: str = 'tensor', **unused):
        x = torch.stack(inputs) if isinstance(inputs, (list, tuple)) else inputs
        pred = self.head(self.trunk(x.float())).squeeze(-1)
        if mode == 'loss':
            t = torch.stack(target) if isinstance(target, (list, tuple)) else target
            return dict(loss=((pred - t.float()) ** 2).mean())
        return pred
