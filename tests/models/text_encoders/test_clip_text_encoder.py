"""CLIPTextEncoder: FC-CLIP template/synonym recipe, caching, chunking, validation, the real tiny CLIP."""
import warnings
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from ovseg.models.heads import get_classification_logits
from ovseg.models.segmentors import append_void_classifier
from ovseg.models.text_encoders import VILD_PROMPT, CLIPTextEncoder
from ovseg.registry import MODELS
from ovseg.vocabulary import normalize_vocabulary


class FakeTextEncoder(CLIPTextEncoder):
    """The recipe and cache over a deterministic fake text tower: each prompt hashes to a fixed random vector."""

    def __init__(self, dim=8, identity='fake', stable=False, **kwargs):
        owner = SimpleNamespace(clip_model=None, tokenizer=None, model_identity=identity, identity_is_stable=stable)
        super().__init__(owner, **kwargs)
        self.dim, self.calls, self.prompts, self.token = dim, 0, [], 0

    @property
    def device(self):
        return torch.device('cpu')

    def vec(self, text):
        g = torch.Generator().manual_seed(abs(hash(text)) % (2 ** 31))
        return torch.randn(self.dim, generator=g) * 3

    def encode_text(self, texts):
        self.calls += 1
        self.prompts += list(texts)
        return torch.stack([self.vec(t) for t in texts])

    def text_weights_token(self):
        return (self.token,)


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
    enc = FakeTextEncoder()
    vocab = [['person', 'child', 'girl'], 'car, automobile', ['sky']]
    cls, nums = enc(vocab)
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
    enc = FakeTextEncoder()
    a, _ = enc([['cat'], ['dog']])
    calls = enc.calls
    for _ in range(5):
        b, nums = enc([['cat'], ['dog']])
    assert enc.calls == calls and torch.equal(a, b) and nums == [1, 1]
    enc([['cat'], ['bird']])  # different vocabulary -> encoded
    assert enc.calls > calls


def test_cache_invalidated_when_text_weights_change():
    enc = FakeTextEncoder()
    enc(['cat'])
    enc(['cat'])
    assert enc.calls == 1
    enc.token = 1
    enc(['cat'])
    assert enc.calls == 2


def test_disk_cache(tmp_path):
    enc = FakeTextEncoder(stable=True, cache_dir=str(tmp_path))
    a, _ = enc(['cat', 'dog'])
    assert len(list(tmp_path.iterdir())) == 1
    enc2 = FakeTextEncoder(stable=True, cache_dir=str(tmp_path))
    b, nums = enc2(['cat', 'dog'])
    assert enc2.calls == 0 and torch.equal(a, b) and nums == [1, 1]
    other = FakeTextEncoder(stable=True, identity='other', cache_dir=str(tmp_path))  # other weights: not served
    other(['cat', 'dog'])
    assert other.calls > 0
    unstable = FakeTextEncoder(stable=False, identity='random', cache_dir=str(tmp_path / 'x'))
    unstable(['cat'])
    assert not (tmp_path / 'x').exists()


def test_chunking_equivalence():
    vocab = [[f'thing{i}', f'alt{i}'] for i in range(7)]  # 14 synonyms * 14 templates = 196 prompts
    enc_a, enc_b = FakeTextEncoder(chunk_size=128), FakeTextEncoder(chunk_size=5)
    a, _ = enc_a(vocab)
    b, _ = enc_b(vocab)
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
    import open_clip
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        bb = MODELS.build(dict(type='CLIPBackbone', model_name='ovseg-tiny-convnext', pretrained=None,
                               allow_random_init=True))
    enc = MODELS.build(dict(type='CLIPTextEncoder', clip=bb, chunk_size=10))
    assert enc.embed_dim == 64
    cls, nums = enc([['cat', 'kitty'], ['dog']])
    assert enc.num_encode_calls == 5  # 3 synonyms × 14 templates = 42 prompts in chunks of 10
    assert cls.shape == (3, 64) and nums == [2, 1]
    assert torch.allclose(cls.norm(dim=-1), torch.ones(3), atol=1e-5)
    # encode_text is open_clip's text tower, un-normalized
    tokens = open_clip.get_tokenizer('ovseg-tiny-convnext')(['dog'])
    with torch.no_grad():
        ref = bb.clip_model.encode_text(tokens)
    assert torch.allclose(enc.encode_text(['dog']), ref, atol=1e-6)
    direct = F.normalize(enc.encode_text([t.format('dog') for t in VILD_PROMPT]), dim=-1).mean(0)
    assert torch.allclose(cls[2], F.normalize(direct, dim=0), atol=1e-5)
    cls2, _ = enc([['cat', 'kitty'], ['dog']])
    assert cls2 is cls  # served from the in-memory cache
    # loading new text-tower weights in place invalidates the cache
    with torch.no_grad():
        bb.clip_model.token_embedding.weight.mul_(2.0)
    cls3, _ = enc([['cat', 'kitty'], ['dog']])
    assert cls3 is not cls and not torch.allclose(cls3, cls)
    with pytest.raises(TypeError, match='clip_model'):
        CLIPTextEncoder(object())
