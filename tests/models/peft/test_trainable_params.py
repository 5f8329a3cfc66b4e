"""The trainable_params declaration and the parameter table."""
import pytest
import torch
from torch import nn

from ovseg.models.peft import (
    ParamRow,
    apply_trainable_params,
    configure_trainable,
    format_parameter_table,
    parameter_table,
    trainable_state_dict,
)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.backbone = nn.Sequential(nn.Linear(10, 10), nn.LayerNorm(10))  # 110 + 20
        self.head = nn.ModuleDict(dict(cls=nn.Linear(10, 3), norm=nn.LayerNorm(3)))  # 33 + 6
        self.scale = nn.Parameter(torch.ones(()))  # 1, held by the model itself
        self.register_buffer('steps', torch.zeros((), dtype=torch.long))


def test_train_declares_exactly_the_set_and_freeze_removes_from_it():
    net = Net()
    got = apply_trainable_params(net, train=[r'^head\.', 'scale'])
    assert got == {'head.cls.weight', 'head.cls.bias', 'head.norm.weight', 'head.norm.bias', 'scale'}
    assert got == {n for n, p in net.named_parameters() if p.requires_grad}
    got = apply_trainable_params(net, train=r'^head\.', freeze=r'\.norm\.')
    assert got == {'head.cls.weight', 'head.cls.bias'}


def test_freeze_alone_keeps_the_other_flags():
    net = Net()
    net.backbone[0].requires_grad_(False)
    got = apply_trainable_params(net, freeze=[r'^head\.norm'])
    assert got == {'backbone.1.weight', 'backbone.1.bias', 'head.cls.weight', 'head.cls.bias', 'scale'}


def test_patterns_that_select_nothing_are_errors():
    with pytest.raises(ValueError, match=r"trainable_params.train: pattern '\^neck' matches no parameter name"):
        apply_trainable_params(Net(), train=['^head', '^neck'])
    with pytest.raises(ValueError, match='not a valid regular expression'):
        apply_trainable_params(Net(), freeze=['head('])
    with pytest.raises(ValueError, match=r"unknown keys \['frozen'\]"):
        configure_trainable(Net(), trainable_params=dict(frozen=['x']))


def test_table_numbers_per_module_and_overall():
    net = Net()
    apply_trainable_params(net, train=[r'^head\.cls\.', r'^backbone\.1\.'])
    rows, trainable, total = parameter_table(net)
    assert (trainable, total) == (20 + 33, 110 + 20 + 33 + 6 + 1)
    assert rows == [ParamRow('backbone', 1, 20, 130), ParamRow('backbone.0', 2, 0, 110),
                    ParamRow('backbone.1', 2, 20, 20), ParamRow('head', 1, 33, 39), ParamRow('head.cls', 2, 33, 33),
                    ParamRow('head.norm', 2, 0, 6), ParamRow('(own)', 1, 0, 1)]
    text = format_parameter_table(net)
    assert text.splitlines()[0] == 'Trainable parameters: 53 of 170 (31.18 %)'
    head = next(line for line in text.splitlines() if line.startswith('head '))
    assert head.split() == ['head', '33', '39', '84.62', '19.41']
    assert set(trainable_state_dict(net)) == {'backbone.1.weight', 'backbone.1.bias', 'head.cls.weight',
                                              'head.cls.bias'}


def test_shared_parameters_are_counted_once():
    tied = nn.Module()
    tied.a = nn.Linear(4, 4, bias=False)
    tied.b = nn.Linear(4, 4, bias=False)
    tied.b.weight = tied.a.weight
    rows, trainable, total = parameter_table(tied)
    assert total == trainable == 16 and [r.name for r in rows] == ['a']
