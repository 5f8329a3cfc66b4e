"""ovseg.utils.dist: identities in one process, exact collectives across two gloo processes."""
import torch
import torch.multiprocessing as mp

from ovseg.utils import all_gather_rows, all_reduce_mean, broadcast_object, get_rank, get_world_size, is_distributed
from tests.helpers.dist_workers import dist_helpers_worker, rows_of


def test_single_process_helpers_are_identities():
    assert (get_rank(), get_world_size(), is_distributed()) == (0, 1, False)
    x = torch.randn(4, 3)
    assert all_gather_rows(x) is x
    m = all_reduce_mean(x)
    assert torch.equal(m, x) and m is not x  # a new tensor: the caller's stays untouched
    assert all_reduce_mean(torch.tensor([3], dtype=torch.int64)).dtype == torch.float64
    obj = {'a': [1, 2]}
    assert broadcast_object(obj) is obj


def test_two_gloo_processes_gather_bit_for_bit(tmp_path):
    counts = [[3, 0], [2, 5], [0, 0]]  # rows per rank: uneven, one empty rank, both empty
    mp.spawn(dist_helpers_worker, args=(2, str(tmp_path / 'init'), str(tmp_path), counts), nprocs=2, join=True)
    results = [torch.load(tmp_path / f'rank{r}.pt', weights_only=True) for r in (0, 1)]
    for rank, res in enumerate(results):
        assert (res['rank'], res['world'], res['is_dist']) == (rank, 2, True)
        for c, got in zip(counts, res['gathered']):
            expected = torch.cat([rows_of(0, c[0]), rows_of(1, c[1])])
            assert got.dtype == torch.float64 and torch.equal(got, expected), (rank, c)
        expected_int = torch.cat([rows_of(0, 3, torch.int64), rows_of(1, 0, torch.int64)])
        assert torch.equal(res['gathered_int'], expected_int)
        assert torch.equal(res['mean'], torch.tensor([1.5, 3.0]))  # mean of (1, 2) and (2, 4)
        assert res['mean_int'].dtype == torch.float64 and res['mean_int'].item() == 0.5
        assert res['obj'] == {'seed': 1235, 'files': ['r1.png']}  # rank 1's object everywhere
