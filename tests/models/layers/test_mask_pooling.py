"""mask_pooling: average inside binarized masks, no gradient through the mask, resizing."""
import torch
import torch.nn.functional as F

from ovseg.models.layers import mask_pooling


def test_mask_pooling_average_and_no_mask_grad():
    feats = torch.arange(2 * 3 * 4 * 4, dtype=torch.float32).reshape(2, 3, 4, 4).requires_grad_()
    masks = torch.full((2, 2, 4, 4), -1.0, requires_grad=True)
    with torch.no_grad():
        masks[0, 0, :2, :2] = 2.0
        masks[1, 1] = 0.5
    pooled = mask_pooling(feats, masks)
    assert pooled.shape == (2, 2, 3)
    assert torch.allclose(pooled[0, 0], feats[0, :, :2, :2].mean((-1, -2)), atol=1e-4)
    assert torch.allclose(pooled[1, 1], feats[1].mean((-1, -2)), atol=1e-4)
    assert torch.equal(pooled[0, 1], torch.zeros(3))  # empty mask -> 0 (eps denominator)
    pooled.sum().backward()
    assert feats.grad is not None and masks.grad is None
    # masks at a different resolution are resized bilinearly first
    big = F.interpolate(masks.detach(), size=(8, 8), mode='bilinear', align_corners=False)
    assert torch.allclose(mask_pooling(feats.detach(), big), mask_pooling(feats.detach(), masks.detach()))


def test_pooling_weights_sum_to_one_per_nonempty_mask():
    from ovseg.models.layers import mask_pooling_weights, pool_with_weights
    logits = torch.full((1, 3, 4, 4), -1.0)
    logits[0, 0, :2] = 1.0
    logits[0, 1] = 1.0
    w = mask_pooling_weights(logits, (4, 4))
    assert w.shape == (1, 3, 16) and not w.requires_grad
    torch.testing.assert_close(w.sum(-1), torch.tensor([[1.0, 1.0, 0.0]]), atol=1e-6, rtol=0)
    feats = torch.randn(1, 5, 4, 4)
    torch.testing.assert_close(pool_with_weights(feats, w), torch.einsum('bchw,bqhw->bqc', feats, w.view(1, 3, 4, 4)))
