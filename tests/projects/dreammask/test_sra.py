"""Synthetic-real alignment: FIFO bank, prototypes, loss formula, gradient path, persistence, DDP gather."""
import os
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F

from projects.dreammask.dreammask.sra import RealFeatureMemoryBank, SyntheticRealAlignment, pool_objects


def test_fifo_order_wrap_and_overflow():
    bank = RealFeatureMemoryBank(num_classes=3, feat_dim=1, size=4)
    bank.enqueue(torch.tensor([[1.], [2.], [3.]]), torch.tensor([1, 1, 1]))
    assert bank.bank[1, :, 0].tolist() == [1, 2, 3, 0] and bank.ptr[1] == 3 and bank.count[1] == 3
    bank.enqueue(torch.tensor([[4.], [5.], [9.]]), torch.tensor([1, 1, 2]))  # wraps: 5 overwrites slot 0
    assert bank.bank[1, :, 0].tolist() == [5, 2, 3, 4] and bank.ptr[1] == 1 and bank.count[1] == 4
    assert bank.bank[2, 0, 0] == 9 and bank.count[0] == 0
    # more rows than the queue in one call: same result as pushing them one by one
    seq = RealFeatureMemoryBank(3, 1, 4)
    vec = RealFeatureMemoryBank(3, 1, 4)
    rows = torch.arange(10.)[:, None]
    for r in rows:
        seq.enqueue(r[None], torch.tensor([0]))
    vec.enqueue(rows, torch.zeros(10, dtype=torch.long))
    assert torch.equal(seq.bank, vec.bank) and torch.equal(seq.ptr, vec.ptr) and torch.equal(seq.count, vec.count)
    with pytest.raises(ValueError, match='num_classes'):
        bank.enqueue(torch.ones(1, 1), torch.tensor([3]))


def test_prototype_is_normalised_mean_of_filled_entries():
    bank = RealFeatureMemoryBank(2, 2, size=8)
    bank.enqueue(torch.tensor([[1., 0.], [0., 1.]]), torch.tensor([0, 0]))
    proto, valid = bank.prototypes()
    assert valid.tolist() == [True, False]
    assert torch.allclose(proto[0], torch.tensor([0.5, 0.5]) / (0.5 ** 0.5))
    assert bank.fill_ratio().item() == pytest.approx(2 / 16)


def test_loss_matches_formula_and_skips_classes_without_prototype():
    torch.manual_seed(0)
    sra = SyntheticRealAlignment(num_classes=4, feat_dim=8, memory_bank_size=5, lambda_sra=0.1)
    real, real_lab = torch.randn(6, 8), torch.tensor([0, 0, 1, 1, 1, 2])
    syn = torch.randn(5, 8, requires_grad=True)
    syn_lab = torch.tensor([0, 1, 3, 2, 0])  # class 3 has no real prototype
    out = sra(real, real_lab, syn, syn_lab)
    proto = torch.stack([F.normalize(F.normalize(real[real_lab == c], dim=-1).mean(0), dim=0) for c in range(3)])
    keep = syn_lab != 3
    expected = 0.1 * (1 - (F.normalize(syn[keep], dim=-1) * proto[syn_lab[keep]]).sum(-1)).mean()
    assert torch.allclose(out['loss_sra'], expected, atol=1e-6)
    assert out['sra_aligned'].item() == 4
    out['loss_sra'].backward()
    assert syn.grad is not None and syn.grad[2].abs().sum() == 0  # no prototype -> no gradient
    assert not sra.memory.bank.requires_grad


def test_no_prototype_gives_zero_with_graph():
    sra = SyntheticRealAlignment(3, 4)
    syn = torch.randn(2, 4, requires_grad=True)
    out = sra(torch.zeros(0, 4), torch.zeros(0, dtype=torch.long), syn, torch.tensor([0, 1]))
    assert out['loss_sra'].item() == 0.0
    out['loss_sra'].backward()


def test_state_dict_round_trip():
    a = SyntheticRealAlignment(3, 4, memory_bank_size=2)
    a(torch.randn(5, 4), torch.tensor([0, 1, 1, 1, 2]), torch.zeros(0, 4), torch.zeros(0, dtype=torch.long))
    b = SyntheticRealAlignment(3, 4, memory_bank_size=2)
    b.load_state_dict(a.state_dict())
    assert set(a.state_dict()) == {'memory.bank', 'memory.ptr', 'memory.count'}
    for k in a.state_dict():
        assert torch.equal(a.state_dict()[k], b.state_dict()[k])


def test_pool_objects_vectorised_equals_direct():
    torch.manual_seed(0)
    feats = torch.randn(2, 3, 4, 4)
    masks = torch.zeros(3, 16, 16, dtype=torch.bool)
    masks[0, :8, :8] = True
    masks[1, 8:, :] = True
    masks[2, 0, 0] = True  # a single pixel: tiny but non-zero weight after area pooling
    pooled, kept = pool_objects(feats, masks, torch.tensor([0, 1, 1]))
    assert kept.tolist() == [True, True, True]
    assert torch.allclose(pooled[0], feats[0, :, :2, :2].mean((1, 2)), atol=1e-6)
    assert torch.allclose(pooled[1], feats[1, :, 2:, :].mean((1, 2)), atol=1e-6)
    assert torch.allclose(pooled[2], feats[1, :, 0, 0], atol=1e-6)


def _free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _ddp_worker(rank, port, out_dir):
    os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port))
    dist.init_process_group('gloo', rank=rank, world_size=2)
    torch.manual_seed(rank)
    sra = SyntheticRealAlignment(num_classes=3, feat_dim=4, memory_bank_size=4)
    real = torch.full((rank + 1, 4), float(rank + 1))  # rank 0: one row of 1s; rank 1: two rows of 2s
    sra(real, torch.full((rank + 1,), rank, dtype=torch.long), torch.zeros(0, 4), torch.zeros(0, dtype=torch.long))
    torch.save(sra.state_dict(), os.path.join(out_dir, f'rank{rank}.pt'))
    dist.destroy_process_group()


@pytest.mark.slow
def test_ddp_ranks_hold_the_same_bank(tmp_path):
    mp.spawn(_ddp_worker, args=(_free_port(), str(tmp_path)), nprocs=2, join=True)
    a = torch.load(tmp_path / 'rank0.pt')
    b = torch.load(tmp_path / 'rank1.pt')
    for k in a:
        assert torch.equal(a[k], b[k]), k
    assert a['memory.count'].tolist() == [1, 2, 0]  # every rank saw both ranks' real objects


def test_pool_objects_unsorted_images_and_non_integer_grid():
    torch.manual_seed(1)
    feats = torch.randn(3, 5, 4, 4, requires_grad=True)
    masks = torch.rand(4, 16, 16) > 0.5
    image_index = torch.tensor([2, 0, 2, 1])
    pooled, kept = pool_objects(feats, masks, image_index)
    w = F.avg_pool2d(masks[:, None].float(), 4)[:, 0]  # area weights on the 4×4 grid
    direct = torch.stack([(feats[i] * w[n]).sum((1, 2)) / w[n].sum() for n, i in enumerate(image_index.tolist())])
    assert kept.all() and torch.allclose(pooled, direct, atol=1e-5)
    pooled.sum().backward()
    assert feats.grad.abs().sum() > 0
    # 18×18 masks do not divide the 4×4 grid: the interpolate fallback gives the area average
    m18 = torch.zeros(1, 18, 18, dtype=torch.bool)
    m18[0, :9, :9] = True
    p18, _ = pool_objects(feats.detach(), m18, torch.tensor([0]))
    assert torch.allclose(p18[0], feats.detach()[0, :, :2, :2].mean((1, 2)), atol=1e-5)
