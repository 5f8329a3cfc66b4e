"""Text classifier: FC-CLIP template/synonym recipe, caching, chunking, validation."""
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from ovseg.models.heads import (VILD_PROMPT, TextClassifierBuilder, append_void_classifier,
                                get_classification_logits, normalize_vocabulary)
from ovseg.registry import MODELS


class FakeEncoder:
    """Deterministic text 'tower': hash each prompt to a fixed random vector; counts calls."""

    def __init__(self, dim=8, identity='fake', stable=False):
        self.dim, self.model_identity, self.identity_is_stable = dim, identity, stable
        self.calls, self.prompts = 0, []
        self.device = torch.device('cpu')

    def vec(self, text):
        g = torch.Generator().manual_seed(abs(hash(text)) % (2 ** 31))
        return torch.randn(self.dim, generator=g) * 3

    def encode_text(self, texts):
        self.calls += 1
        self.prompts += list(texts)
        return torch.stack([self.vec(t) for t in texts])


def test_vild_templates_exact():
    assert VILD_PROMPT == (
        'a photo of a {}.', 'This is a photo of a {}', 'There is a {} in the scene',
        'There is the {} in the scene', 'a photo of a {} in the scene', 'a photo of a small {}.',
        'a photo of a medium {}.', 'a photo of a large {}.', 'This is a photo of a small {}.',
        'This is a photo of a medium {}.', 'This is a photo of a large {}.',
        'There is a small {} in the scene.', 'There is a medium {} in the scene.',
        'There is a large {} in the scene.')
    assert len(VILD_PROMPT) == 14


def test_recipe_matches_direct_computation():
    enc = FakeEncoder()
    vocab = [['person', 'child', 'girl'], 'car, automobile', ['sky']]
    cls, nums = TextClassifierBuilder()(enc, vocab)
    assert nums == [3, 2, 1] and cls.shape == (6, 8)
    synonyms = ['person', 'child', 'girl', 'car', 'automobile', 'sky']
    expected = []
    for s in synonyms:
        e = np.stack([enc.vec(t.format(s)).numpy() for t in VILD_PROMPT]).astype(np.float64)
        e /= np.linalg.norm(e, axis=-1, keepdims=True)
        m = e.mean(0)
        expected.append(m / np.linalg.norm(m))
    np.testing.assert_allclose(cls.numpy(), np.stack(expected), atol=1e-5)
    # scoring takes the max over a class's synonyms
    full = append_void_classifier(cls, torch.randn(1, 8))
    x = torch.randn(2, 4, 8)
    logits = get_classification_logits(x, full, torch.tensor(np.log(1 / 0.07)), nums)
    sims = F.normalize(x, dim=-1) @ full.T * (1 / 0.07)
    assert torch.allclose(logits[..., 0], sims[..., 0:3].max(-1).values, atol=1e-4)
    assert torch.allclose(logits[..., 1], sims[..., 3:5].max(-1).values, atol=1e-4)
    assert torch.allclose(logits[..., 2], sims[..., 5], atol=1e-4)
    assert torch.allclose(logits[..., 3], sims[..., 6], atol=1e-4)


def test_cache_hit_encodes_once():
    enc = FakeEncoder()
    builder = TextClassifierBuilder()
    a, _ = builder(enc, [['cat'], ['dog']])
    calls = enc.calls
    for _ in range(5):
        b, nums = builder(enc, [['cat'], ['dog']])
    assert enc.calls == calls and torch.equal(a, b) and nums == [1, 1]
    builder(enc, [['cat'], ['bird']])  # different vocabulary -> encoded
    assert enc.calls > calls
    other = FakeEncoder(identity='other')  # different model identity -> not served from cache
    builder(other, [['cat'], ['dog']])
    assert other.calls > 0


def test_cache_invalidated_when_text_weights_change():
    enc = FakeEncoder()
    token = [0]
    enc.text_weights_token = lambda: (token[0],)
    builder = TextClassifierBuilder()
    builder(enc, ['cat'])
    builder(enc, ['cat'])
    assert enc.calls == 1
    token[0] = 1
    builder(enc, ['cat'])
    assert enc.calls == 2


def test_disk_cache(tmp_path):
    enc = FakeEncoder(stable=True)
    a, _ = TextClassifierBuilder(cache_dir=str(tmp_path))(enc, ['cat', 'dog'])
    assert len(list(tmp_path.iterdir())) == 1
    enc2 = FakeEncoder(stable=True)
    b, nums = TextClassifierBuilder(cache_dir=str(tmp_path))(enc2, ['cat', 'dog'])
    assert enc2.calls == 0 and torch.equal(a, b) and nums == [1, 1]
    unstable = FakeEncoder(stable=False, identity='random')
    TextClassifierBuilder(cache_dir=str(tmp_path / 'x'))(unstable, ['cat'])
    assert not (tmp_path / 'x').exists()


def test_chunking_equivalence():
    vocab = [[f'thing{i}', f'alt{i}'] for i in range(7)]  # 14 synonyms * 14 templates = 196 prompts
    enc_a, enc_b = FakeEncoder(), FakeEncoder()
    a, _ = TextClassifierBuilder(chunk_size=128)(enc_a, vocab)
    b, _ = TextClassifierBuilder(chunk_size=5)(enc_b, vocab)
    assert enc_a.calls == 2 and enc_b.calls == 40
    assert enc_a.prompts == enc_b.prompts
    assert torch.allclose(a, b, atol=1e-6)


def test_validation_errors():
    with pytest.raises(ValueError, match='Empty vocabulary'):
        normalize_vocabulary([])
    with pytest.raises(ValueError, match='empty name'):
        normalize_vocabulary([['cat', '  ']])
    with pytest.raises(ValueError, match='empty name'):
        normalize_vocabulary(['cat,,dog'])
    with pytest.raises(ValueError, match='no names'):
        normalize_vocabulary([[]])
    with pytest.raises(ValueError, match='Duplicate'):
        normalize_vocabulary([['cat', 'kitty'], ['dog'], ['Cat', ' kitty']])
    assert normalize_vocabulary(['person, child', ['sky ']]) == [('person', 'child'), ('sky',)]


def test_registry_build_and_real_tiny_clip():
    builder = MODELS.build(dict(type='OpenVocabTextEncoder', chunk_size=64))
    assert isinstance(builder, TextClassifierBuilder)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        bb = MODELS.build(dict(type='CLIPBackbone', model_name='ovseg-tiny-convnext', pretrained=None,
                               allow_random_init=True,
                               text_classifier_cfg=dict(type='TextClassifierBuilder', chunk_size=10)))
    cls, nums = bb.get_text_classifier([['cat', 'kitty'], ['dog']])
    assert bb._default_text_builder.chunk_size == 10 and bb._default_text_builder.num_encode_calls == 5
    assert cls.shape == (3, 64) and nums == [2, 1]
    assert torch.allclose(cls.norm(dim=-1), torch.ones(3), atol=1e-5)
    direct = F.normalize(bb.encode_text([t.format('dog') for t in VILD_PROMPT]), dim=-1).mean(0)
    assert torch.allclose(cls[2], F.normalize(direct, dim=0), atol=1e-5)
    cls2, _ = bb.get_text_classifier([['cat', 'kitty'], ['dog']])
    assert cls2 is cls  # served from the in-memory cache
