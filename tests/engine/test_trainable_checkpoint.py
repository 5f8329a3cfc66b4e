"""Trainable-only checkpoints: resuming accepts exactly the frozen parameters as missing."""
import pytest
import torch
from torch import nn

from ovseg.engine.checkpoint_files import check_fit
from ovseg.utils.checkpoint_io import CheckpointFormatError


def _model():
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 2))
    model[0].requires_grad_(False)
    return model


def test_frozen_parameters_may_be_missing_only_when_declared():
    model = _model()
    trainable_only = {k: v for k, v in model.state_dict().items() if not k.startswith('0.')}
    warnings = []
    fit = check_fit('t.pth', model, trainable_only, exact=True, warn=warnings.append, frozen_omitted=True)
    assert fit.missing == [] and warnings == []
    with pytest.raises(CheckpointFormatError, match='another model'):
        check_fit('t.pth', model, trainable_only, exact=True, warn=warnings.append)  # not declared: refused
    no_head = {k: v for k, v in trainable_only.items() if not k.startswith('2.')}
    with pytest.raises(CheckpointFormatError, match='another model'):  # a trainable parameter missing: refused
        check_fit('t.pth', model, no_head, exact=True, warn=warnings.append, frozen_omitted=True)


def test_hook_drops_frozen_parameters_keeps_buffers():
    from types import SimpleNamespace

    from ovseg.engine.hooks import TrainableCheckpointHook
    model = _model()
    checkpoint = dict(state_dict=model.state_dict(), meta={})
    TrainableCheckpointHook().before_save_checkpoint(SimpleNamespace(model=model), checkpoint)
    assert sorted(checkpoint['state_dict']) == ['1.bias', '1.num_batches_tracked', '1.running_mean',
                                                '1.running_var', '1.weight', '2.bias', '2.weight']
    assert checkpoint['meta']['trainable_only'] == dict(dropped=2, kept=7)
    assert torch.equal(checkpoint['state_dict']['2.weight'], model[2].weight)
