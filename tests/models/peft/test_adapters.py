"""Bottleneck adapters: identity at init, key names, gradient path, serial / parallel formulas, copies, errors."""
import copy

import pytest
import torch
from torch import nn

from ovseg.models.peft import BottleneckAdapter, BottleneckAdapters


class Layer(nn.Module):
    """Stands in for a decoder layer: (tgt, pos) -> tgt, no channel attribute to infer from."""

    def __init__(self, d):
        super().__init__()
        self.attn = nn.MultiheadAttention(d, 2)
        self.norm = nn.LayerNorm(d)

    def forward(self, tgt, query_pos=None):
        q = tgt if query_pos is None else tgt + query_pos
        return self.norm(tgt + self.attn(q, q, tgt)[0])


class Pair(nn.Module):
    def forward(self, x):
        return x * 2, x.sum()


class Net(nn.Module):
    def __init__(self, d=8):
        super().__init__()
        self.layers = nn.ModuleList([Layer(d) for _ in range(2)])
        self.ffn = nn.Linear(d, d)
        self.mask_embed = nn.Linear(d, 5)
        self.conv = nn.Conv2d(3, d, 1)  # named like the pixel decoder's adapter_1 lateral convs' neighbours
        self.adapter_1 = nn.Conv2d(d, d, 1)
        self.pair = Pair()

    def forward(self, x, img):
        for layer in self.layers:
            x = layer(x, query_pos=torch.ones_like(x))
        x = self.ffn(x)
        y = self.pair(x)[0]
        return self.mask_embed(y), self.adapter_1(self.conv(img))


def _net():
    torch.manual_seed(0)
    return Net()


def _x():
    g = torch.Generator().manual_seed(2)
    return torch.randn(4, 2, 8, generator=g), torch.randn(2, 3, 5, 5, generator=g)


def _adapt(net):
    BottleneckAdapters(targets=r'layers\.\d+', dim=8).apply(net)
    BottleneckAdapters(targets=['ffn', 'conv', 'adapter_1'], freeze_base=False).apply(net)
    BottleneckAdapters(targets=['mask_embed'], mode='parallel', reduction=4, freeze_base=False).apply(net)
    BottleneckAdapters(targets=['pair'], dim=8, output_index=0, freeze_base=False).apply(net)


def test_adapted_model_equals_base_at_init_and_keeps_base_key_names():
    base = _net()
    net = copy.deepcopy(base)
    _adapt(net)
    out_base, out = base(*_x()), net(*_x())
    assert torch.equal(out[0], out_base[0]) and torch.equal(out[1], out_base[1])
    base_keys = set(base.state_dict())
    new_keys = set(net.state_dict()) - base_keys
    assert base_keys <= set(net.state_dict())  # no base parameter was renamed
    assert new_keys and all('.adapters.default.' in k for k in new_keys)
    assert 'adapter_1.adapters.default.up.weight' in new_keys and 'adapter_1.weight' in base_keys
    assert net.conv.adapters['default'].channel_dim == 1  # convolution: channels first
    assert net.mask_embed.adapters['default'].down.out_features == 2  # parallel: 8 -> 8/4 -> 5
    assert net.mask_embed.adapters['default'].up.out_features == 5


def test_gradients_reach_only_the_adapters_of_a_frozen_base_and_both_projections_train():
    net = _net()
    BottleneckAdapters(targets=r'layers\.\d+', dim=8).apply(net)  # freeze_base: the whole model is the scope
    trainable = {n for n, p in net.named_parameters() if p.requires_grad}
    assert trainable == {f'layers.{i}.adapters.default.{m}.{w}' for i in range(2) for m in ('down', 'up')
                         for w in ('weight', 'bias')}
    opt = torch.optim.SGD([p for p in net.parameters() if p.requires_grad], lr=0.1)
    start = {n: p.detach().clone() for n, p in net.named_parameters()}
    for _ in range(2):
        opt.zero_grad()
        out = net(*_x())
        (out[0].pow(2).mean() + out[1].mean()).backward()
        assert all(p.grad is None for n, p in net.named_parameters() if n not in trainable)
        opt.step()
    for n, p in net.named_parameters():
        assert torch.equal(p, start[n]) != (n in trainable), n  # trained ones changed, the rest bit-identical


def test_serial_and_parallel_formulas():
    torch.manual_seed(0)
    lin = nn.Linear(6, 4)
    holder = nn.ModuleDict(dict(f=lin))
    BottleneckAdapters(targets=['f'], mode='parallel', reduction=2, act='GELU', scale=0.5).apply(holder)
    ad = lin.adapters['default']
    nn.init.normal_(ad.up.weight)
    x = torch.randn(3, 6)
    expected = lin.weight @ x.T
    expected = expected.T + lin.bias + 0.5 * ad.up(nn.functional.gelu(ad.down(x)))
    assert torch.allclose(holder['f'](x), expected, atol=1e-6)
    serial = nn.ModuleDict(dict(f=nn.Linear(6, 4)))
    BottleneckAdapters(targets=['f'], reduction=1).apply(serial)
    sad = serial['f'].adapters['default']
    nn.init.normal_(sad.up.weight)
    h = serial['f'].weight @ x.T
    h = h.T + serial['f'].bias
    assert torch.allclose(serial['f'](x), h + sad.up(torch.relu(sad.down(h))), atol=1e-6)


def test_a_deep_copy_runs_its_own_adapters():
    net = _net()
    _adapt(net)
    twin = copy.deepcopy(net)
    with torch.no_grad():
        twin.ffn.adapters['default'].up.weight.fill_(1.0)
    assert not torch.equal(twin(*_x())[0], net(*_x())[0])
    assert torch.equal(net(*_x())[0], _net()(*_x())[0])  # the original still equals the base


def test_errors_say_what_to_fix():
    with pytest.raises(TypeError, match="'layers' is a ModuleList"):
        BottleneckAdapters(targets=['layers']).apply(_net())
    with pytest.raises(ValueError, match=r"cannot infer its output dimension; give dim=<channels>"):
        BottleneckAdapters(targets=r'layers\.0').apply(_net())
    net = _net()
    BottleneckAdapters(targets=['pair'], dim=8).apply(net)
    with pytest.raises(TypeError, match='returns tuple, not a tensor: give the adapter an output_index'):
        net(*_x())
    BottleneckAdapters(targets=['ffn']).apply(net)
    with pytest.raises(ValueError, match="'ffn' already has an adapter named 'default'"):
        BottleneckAdapters(targets=['ffn']).apply(net)
    with pytest.raises(ValueError, match='selects no module'):
        BottleneckAdapters(targets=['adapters']).apply(net)  # containers are never targets
    with pytest.raises(ValueError, match="mode must be 'serial' or 'parallel'"):
        BottleneckAdapters(targets=['ffn'], mode='sideways')
    with pytest.raises(ValueError, match='activation'):
        BottleneckAdapter(4, act='Swish')
