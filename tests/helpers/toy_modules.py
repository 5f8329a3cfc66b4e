"""A linear-regression model and dataset registered into ovseg, for engine-level tests (resume, DDP)."""
from __future__ import annotations

import os
import signal

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


@HOOKS.register_module(force=True)
class KillAtIterHook(Hook):
    """Simulate a hard crash: SIGKILL this process right after iteration ``kill_iter`` (after its checkpoint)."""

    priority = 'LOWEST'

    def __init__(self, kill_iter: int, rank: int | None = None) -> None:
        self.kill_iter, self.rank = kill_iter, rank

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        if runner.iter + 1 >= self.kill_iter and self.rank in (None, runner.rank):
            os.kill(os.getpid(), signal.SIGKILL)


@HOOKS.register_module(force=True)
class KillDuringSaveHook(Hook):
    """SIGKILL the process half-way through writing its ``save_index``-th checkpoint file (1-based)."""

    def __init__(self, save_index: int) -> None:
        self.save_index = save_index

    def before_train(self, runner) -> None:
        from mmengine.fileio.backends.local_backend import LocalBackend
        original, state = LocalBackend.put, {'saves': 0}

        def put(backend, obj: bytes, filepath) -> None:
            if str(filepath).endswith('.pth') or '.pth.' in str(filepath):
                state['saves'] += 1
                if state['saves'] == self.save_index:
                    with open(filepath, 'wb') as f:
                        f.write(obj[:len(obj) // 2])
                        f.flush()
                        os.fsync(f.fileno())
                    os.kill(os.getpid(), signal.SIGKILL)
            return original(backend, obj, filepath)

        LocalBackend.put = put


@HOOKS.register_module(force=True)
class StopRankHook(Hook):
    """SIGSTOP rank ``rank`` at iteration ``stop_iter``: a rank that stops responding without dying."""

    def __init__(self, rank: int, stop_iter: int) -> None:
        self.rank, self.stop_iter = rank, stop_iter

    def before_train_iter(self, runner, batch_idx, data_batch=None) -> None:
        if runner.rank == self.rank and runner.iter + 1 == self.stop_iter:
            with open(os.path.join(runner.work_dir, f'stopped_rank{self.rank}.pid'), 'w') as f:
                f.write(str(os.getpid()))
            os.kill(os.getpid(), signal.SIGSTOP)
