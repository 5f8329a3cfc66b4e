"""Small distributed helpers that behave as identities in a single process.

Models and hooks call these instead of ``torch.distributed`` directly so the same code runs unchanged in a
plain ``python tools/train.py`` process, under DDP over gloo (CPU) and over nccl (GPU).
"""
from __future__ import annotations

from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor


def is_distributed() -> bool:
    """True when a process group is initialised with more than one rank."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def get_rank() -> int:
    """This process's global rank (0 without a process group)."""
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def get_world_size() -> int:
    """Number of ranks (1 without a process group)."""
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def all_reduce_mean(x: Tensor) -> Tensor:
    """Mean of ``x`` over ranks, returned as a new tensor (``x`` is left untouched; no gradient flows).

    Integer tensors are averaged in float64 and returned as float64: an integer mean would truncate.
    """
    out = x.detach().clone()
    if not out.is_floating_point():
        out = out.to(torch.float64)
    if not is_distributed():
        return out
    dist.all_reduce(out, op=dist.ReduceOp.SUM)
    return out.div_(dist.get_world_size())


def broadcast_object(obj: Any, src: int = 0) -> Any:
    """``obj`` of rank ``src`` on every rank (pickled; for small Python objects such as seeds or file lists)."""
    if not is_distributed():
        return obj
    holder = [obj if get_rank() == src else None]
    dist.broadcast_object_list(holder, src=src)
    return holder[0]


def all_gather_rows(x: Tensor) -> Tensor:
    """Concatenate every rank's rows in rank order; ranks may hold different numbers of rows (zero included).

    Rows are padded to the largest count for the collective and the padding is cut away again, so the result
    equals ``torch.cat([x_rank0, x_rank1, ...])`` exactly. Identity without a process group. No gradient
    flows through the gathered rows (``dist.all_gather`` is not differentiable); callers use it for
    statistics and memory banks.
    """
    if not is_distributed():
        return x
    world = dist.get_world_size()
    n = torch.tensor([x.shape[0]], device=x.device, dtype=torch.long)
    sizes = [torch.zeros_like(n) for _ in range(world)]
    dist.all_gather(sizes, n)
    counts = [int(s.item()) for s in sizes]
    max_n = max(counts)
    if max_n == 0:
        return x
    padded = x.new_zeros((max_n,) + tuple(x.shape[1:]))
    padded[:x.shape[0]] = x
    out = [torch.empty_like(padded) for _ in range(world)]
    dist.all_gather(out, padded.contiguous())
    return torch.cat([o[:c] for o, c in zip(out, counts)])
