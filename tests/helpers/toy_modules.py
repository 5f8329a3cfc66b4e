"""A linear-regression model and dataset registered into ovseg, for engine-level tests (resume, DDP)."""
from __future__ import annotations

import torch
from mmengine.dataset import BaseDataset
from mmengine.evaluator import BaseMetric
from mmengine.model import BaseModel
from torch import nn

from ovseg.registry import DATASETS, METRICS, MODELS


@DATASETS.register_module(force=True)
class ToyRegressionDataset(BaseDataset):
    """y = x·w* + noise, generated from a seed so every process sees the same data."""

    def __init__(self, size: int = 64, dim: int = 4, seed: int = 0, **kwargs) -> None:
        self.size, self.dim, self.seed = size, dim, seed
        super().__init__(serialize_data=False, **kwargs)

    def load_data_list(self) -> list[dict]:
        g = torch.Generator().manual_seed(self.seed)
        x = torch.randn(self.size, self.dim, generator=g)
        w = torch.arange(1, self.dim + 1, dtype=torch.float32)
        y = x @ w + 0.01 * torch.randn(self.size, generator=g)
        return [dict(inputs=x[i], target=y[i], index=i) for i in range(self.size)]

    def prepare_data(self, idx: int) -> dict:
        return self.get_data_info(idx)


@MODELS.register_module(force=True)
class ToyRegressor(BaseModel):
    """One linear layer; records every sample index it trained on (to check resume order)."""

    def __init__(self, dim: int = 4, **kwargs) -> None:
        super().__init__(**kwargs)
        self.linear = nn.Linear(dim, 1)
        self.register_buffer('seen_checksum', torch.zeros((), dtype=torch.float64))

    def forward(self, inputs, target=None, index=None, mode: str = 'tensor', **unused):
        x = torch.stack(inputs) if isinstance(inputs, (list, tuple)) else inputs
        pred = self.linear(x.float()).squeeze(-1)
        if mode == 'loss':
            t = torch.stack(target) if isinstance(target, (list, tuple)) else target
            idx = torch.as_tensor(index, dtype=torch.float64)
            # order-sensitive checksum of the sample stream
            self.seen_checksum.mul_(1.0001).add_((idx + 1).sum())
            return dict(loss=((pred - t.float()) ** 2).mean())
        if mode == 'predict':
            t = torch.stack(target) if isinstance(target, (list, tuple)) else target
            return [dict(err=float((p - q) ** 2)) for p, q in zip(pred, t)]
        return pred


@METRICS.register_module(force=True)
class ToyMSEMetric(BaseMetric):
    def process(self, data_batch, data_samples) -> None:
        self.results.extend(s['err'] for s in data_samples)

    def compute_metrics(self, results: list) -> dict:
        return dict(mse=sum(results) / len(results))


from mmengine.hooks import Hook  # noqa: E402

from ovseg.registry import HOOKS  # noqa: E402


@HOOKS.register_module(force=True)
class StopAtIterHook(Hook):
    """Simulate a crash: stop training right after iteration ``stop_iter`` (after its checkpoint)."""

    priority = 'LOWEST'

    def __init__(self, stop_iter: int) -> None:
        self.stop_iter = stop_iter

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        if runner.iter + 1 >= self.stop_iter:
            runner.train_loop.stop_training = True
