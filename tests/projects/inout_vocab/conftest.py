"""Shared tiny fixtures of the in-/out-of-vocabulary tests: two tiny FC-CLIP checkpoints (a "zero-shot" and a
"fine-tuned" one, different random weights) and a 4+2-image ToyScenes draw, made once per session."""
import pytest
import torch

from tests.projects.inout_vocab.tiny_models import TOY_GENERATE, build_tiny


@pytest.fixture(scope='session')
def tiny_checkpoints(tmp_path_factory):
    """``{'zero_shot': path, 'finetuned': path}``: mmengine-style checkpoints of two differently seeded models."""
    root = tmp_path_factory.mktemp('inout_ckpts')
    out = {}
    for name, seed in (('zero_shot', 0), ('finetuned', 1)):
        model = build_tiny(seed)
        path = root / f'{name}.pth'
        torch.save(dict(state_dict=model.state_dict(), meta=dict()), path)
        out[name] = str(path)
    return out


@pytest.fixture(scope='session')
def toy_root(tmp_path_factory):
    from ovseg.datasets.toy_scenes import ensure_toy_scenes
    root = tmp_path_factory.mktemp('inout_toy') / 'toy'
    ensure_toy_scenes(root, **TOY_GENERATE)
    return str(root)
