"""Pure-PyTorch multi-scale deformable attention: parity with transformers' implementation of the op."""
import torch
from transformers.models.mask2former.modeling_mask2former import multi_scale_deformable_attention as hf_msda

from ovseg.models.layers import MSDeformAttn, multi_scale_deformable_attn


def test_core_matches_transformers():
    torch.manual_seed(0)
    shapes = [(12, 10), (6, 5), (3, 3)]
    n, heads, d, lq, pts = 2, 4, 8, 17, 4
    value = torch.randn(n, sum(h * w for h, w in shapes), heads, d)
    # include locations outside [0, 1] to exercise zero padding
    loc = torch.rand(n, lq, heads, len(shapes), pts, 2) * 1.2 - 0.1
    attn = torch.rand(n, lq, heads, len(shapes), pts)
    attn = attn / attn.sum((-1, -2), keepdim=True)
    ours = multi_scale_deformable_attn(value, shapes, loc, attn)
    ref = hf_msda(value, shapes, loc, attn)
    assert ours.shape == (n, lq, heads * d)
    assert torch.allclose(ours, ref, atol=1e-6)


def test_module_init_and_gradients():
    torch.manual_seed(0)
    m = MSDeformAttn(d_model=32, n_levels=2, n_heads=4, n_points=3)
    # Deformable-DETR init: zero attention logits -> uniform weights; offsets on a ring of radius 1..P
    bias = m.sampling_offsets.bias.view(4, 2, 3, 2)
    assert torch.allclose(bias[:, :, 2].abs().max(-1).values, torch.full((4, 2), 3.0))
    shapes = [(6, 6), (3, 3)]
    x = torch.randn(2, 45, 32, requires_grad=True)
    out = m(x, torch.rand(2, 45, 2, 2), x, shapes)
    out.sum().backward()
    assert all(p.grad is not None for p in m.parameters())
