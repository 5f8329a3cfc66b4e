"""Worker bodies for multi-process (gloo) tests; importable by spawned children as ``tests.helpers.*``."""
from __future__ import annotations

import torch
import torch.distributed as dist


def rows_of(rank: int, n: int, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """The rows rank ``rank`` contributes in the gather test (seeded, so the parent can rebuild them)."""
    g = torch.Generator().manual_seed(100 + rank)
    if dtype.is_floating_point:
        return torch.randn(n, 3, 2, generator=g, dtype=dtype)
    return torch.randint(-5, 5, (n, 3, 2), generator=g, dtype=dtype)


def dist_helpers_worker(rank: int, world: int, init_file: str, out_dir: str, counts: list[list[int]]) -> None:
    """Run every helper of ``ovseg.utils.dist`` on this rank and save what it returned."""
    from ovseg.utils import dist as D

    dist.init_process_group('gloo', init_method=f'file://{init_file}', rank=rank, world_size=world)
    try:
        out = dict(rank=D.get_rank(), world=D.get_world_size(), is_dist=D.is_distributed())
        out['gathered'] = [D.all_gather_rows(rows_of(rank, c[rank])) for c in counts]
        out['gathered_int'] = D.all_gather_rows(rows_of(rank, counts[0][rank], torch.int64))
        out['mean'] = D.all_reduce_mean(torch.tensor([1.0, 2.0]) * (rank + 1))
        out['mean_int'] = D.all_reduce_mean(torch.tensor([rank], dtype=torch.int64))
        out['obj'] = D.broadcast_object({'seed': 1234 + rank, 'files': [f'r{rank}.png']}, src=1)
        torch.save(out, f'{out_dir}/rank{rank}.pt')
    finally:
        dist.destroy_process_group()
