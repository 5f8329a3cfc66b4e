"""detectron2-style convolution with its norm and activation, shared by the pixel decoders."""
from __future__ import annotations

from torch import Tensor, nn


class Conv2dNormAct(nn.Conv2d):
    """detectron2 ``Conv2d``: a conv holding its ``norm`` (so keys read ``adapter_1.norm.weight``) and activation.

    ``norm`` / ``activation`` are modules (or None); the activation has no parameters, so the state-dict keys are
    the official ones (``weight``, ``bias`` when used, ``norm.*``).
    """

    def __init__(self, *args, norm: nn.Module | None = None, activation: nn.Module | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.norm = norm
        self.activation = activation

    def forward(self, x: Tensor) -> Tensor:
        x = super().forward(x)
        if self.norm is not None:
            x = self.norm(x)
        if self.activation is not None:
            x = self.activation(x)
        return x


def c2_xavier_fill(module: nn.Conv2d | nn.Linear) -> None:
    """Caffe2 "XavierFill" used by detectron2 for FPN convs (fvcore ``c2_xavier_fill``)."""
    nn.init.kaiming_uniform_(module.weight, a=1)
    if module.bias is not None:
        nn.init.constant_(module.bias, 0)
