"""SEEMLanguageEncoder: tokenizer ids, EOT pooling, grounding tokens, templates + background, similarity scales,
official key names after the SEEM rename map, frozen default, full-size parameter count."""
import math
import random

import open_clip
import pytest
import torch

from ovseg.models.text_encoders import SEEM_PROMPT_TEMPLATES, SEEMLanguageEncoder
from ovseg.models.utils.seem_names import seem_backbone_pixel_lang_keys
from ovseg.registry import MODELS
from tests.helpers.seem_keys import official_lang_encoder_shapes

TINY = dict(width=16, layers=2, heads=2, dim_proj=8)
TEXTS = ['a photo of a cat.', 'the red umbrella on the left', 'x', 'Two dogs, playing+running!']


@pytest.fixture(scope='module')
def enc():
    torch.manual_seed(0)
    return SEEMLanguageEncoder(**TINY).eval()


def _unit(x):
    return x / (x.norm(dim=-1, keepdim=True) + 1e-7)


# ---------------------------------------------------------------- (a) tokenizer
def test_tokenizer_ids_match_open_clip_tokenize(enc):
    ids, mask = enc.tokenize(TEXTS)
    assert torch.equal(ids, open_clip.tokenize(TEXTS))
    assert ids.shape == (4, 77) and ids[:, 0].eq(49406).all()
    long_ids, long_mask = enc.tokenize(' '.join(['word'] * 200))
    assert torch.equal(long_ids, open_clip.tokenize([' '.join(['word'] * 200)]))
    assert long_ids[0, -1] == 49407 and long_mask.all()  # truncated, EOT kept last


# ---------------------------------------------------------------- (b) EOT pooling and grounding tokens
def test_sentence_embedding_is_the_eot_state(enc):
    ids, mask = enc.tokenize(TEXTS)
    eot = ids.argmax(-1)
    assert torch.equal(eot, (ids == 49407).int().argmax(-1))  # argmax(ids) is the EOT position
    assert torch.equal(mask, torch.arange(77)[None] <= eot[:, None])  # positions ≤ EOT are valid
    with torch.no_grad():
        sentences = enc.encode_sentences(TEXTS)
        token_emb, token_mask, sent2 = enc.encode_tokens(TEXTS, return_sentence=True)
        _, hidden = enc.encode_ids(ids)
    assert sentences.shape == (4, 8) and token_emb.shape == (4, 77, 8)
    torch.testing.assert_close(sentences, hidden[torch.arange(4), eot] @ enc.lang_proj)
    torch.testing.assert_close(sentences, token_emb[torch.arange(4), eot])
    torch.testing.assert_close(sent2, sentences)
    assert torch.equal(token_mask, mask)
    torch.testing.assert_close(enc.encode_sentences(TEXTS, normalize=True).norm(dim=-1), torch.ones(4))


def test_causal_eot_state_ignores_padding(enc):
    ids, _ = enc.tokenize(['a photo of a cat.'])
    eot = int(ids.argmax())
    other = ids.clone()
    other[0, eot + 1:] = 49407  # HF pads with EOT, open_clip with 0: the EOT state must not change
    with torch.no_grad():
        a, _ = enc.encode_ids(ids)
        b, _ = enc.encode_ids(other)
    torch.testing.assert_close(a, b)


# ---------------------------------------------------------------- (c) templates and the background column
def test_eval_class_embeddings_average_templates_and_append_background(enc):
    templates = ('a {}.', 'the {}!')
    with torch.no_grad():
        got = enc.class_embeddings(['cat', 'wall-other-merged'], templates=templates)

        def expected(name):
            e = _unit(enc.encode_sentences([t.format(name) for t in templates])).mean(0)
            return e / e.norm()

        rows = torch.stack([expected('cat'), expected('wall'), expected('background')])
    assert got.shape == (3, 8)
    torch.testing.assert_close(got, rows)
    assert not got.requires_grad
    no_bg = enc.class_embeddings(['cat'], templates=templates, add_background=False)
    torch.testing.assert_close(no_bg, rows[:1])


def test_train_class_embeddings_one_random_template_per_class(enc):
    names = ['person', 'table-merged', 'a,b+c']
    with torch.no_grad():
        got = enc.class_embeddings(names, train=True, rng=random.Random(3))
        r = random.Random(3)
        prompts = [r.choice(SEEM_PROMPT_TEMPLATES).format(n) for n in ('person', 'table', 'ab c', 'background')]
        expected = enc.encode_sentences(prompts, normalize=True)
    torch.testing.assert_close(got, expected)


def test_seem_prompt_templates():
    assert len(SEEM_PROMPT_TEMPLATES) == 81 and len(set(SEEM_PROMPT_TEMPLATES)) == 81
    assert SEEM_PROMPT_TEMPLATES[:2] == ('{}.', 'a photo of a {}.')
    assert SEEM_PROMPT_TEMPLATES[-1] == 'a tattoo of the {}.'
    assert all(t.count('{}') == 1 for t in SEEM_PROMPT_TEMPLATES)


def test_chunked_encoding_equals_one_pass():
    torch.manual_seed(0)
    small = SEEMLanguageEncoder(chunk_size=3, templates=('a {}.', 'the {}', '{} here'), **TINY).eval()
    big = SEEMLanguageEncoder(chunk_size=1000, templates=('a {}.', 'the {}', '{} here'), **TINY).eval()
    big.load_state_dict(small.state_dict())
    names = ['cat', 'dog', 'car', 'tree']
    torch.testing.assert_close(small.class_embeddings(names), big.class_embeddings(names))


# ---------------------------------------------------------------- (d) similarity scales
def test_compute_similarity_and_vl_similarity_scales(enc):
    v = torch.randn(2, 5, 8)
    t = _unit(torch.randn(4, 8))
    with torch.no_grad():
        enc.logit_scale.fill_(math.log(200.0))
        try:
            logits = enc.compute_similarity(v, t)
            torch.testing.assert_close(logits, 200.0 * _unit(v) @ t.t(), rtol=1e-5, atol=1e-4)  # not clamped
            vn = _unit(torch.randn(3, 8))
            torch.testing.assert_close(enc.vl_similarity(vn, t), 100.0 * vn @ t.t())  # clamped at 100
            enc.logit_scale.fill_(math.log(20.0))
            torch.testing.assert_close(enc.vl_similarity(vn, t), 20.0 * vn @ t.t(), rtol=1e-5, atol=1e-5)
        finally:
            enc.logit_scale.fill_(1.0)
    assert logits.shape == (2, 5, 4)


# ---------------------------------------------------------------- (e) official names after the rename map
def test_keys_equal_seem_names_after_rename_map():
    enc = SEEMLanguageEncoder(**TINY)
    official = {f'sem_seg_head.predictor.lang_encoder.{k}': torch.zeros(s)
                for k, s in official_lang_encoder_shapes(width=16, layers=2, dim_proj=8).items()}
    mapped, unmatched = seem_backbone_pixel_lang_keys(official)
    assert unmatched == []
    inner = {k.removeprefix('text_encoder.'): tuple(v.shape) for k, v in mapped.items()}
    assert inner == {k: tuple(v.shape) for k, v in enc.state_dict().items()}
    enc.load_state_dict({k.removeprefix('text_encoder.'): v for k, v in mapped.items()}, strict=True)


# ---------------------------------------------------------------- defaults
def test_frozen_by_default_and_registry():
    enc = MODELS.build(dict(type='SEEMLanguageEncoder', **TINY))
    assert not any(p.requires_grad for p in enc.parameters())
    assert float(enc.logit_scale) == 1.0 and enc.lang_proj.shape == (16, 8)
    trainable = SEEMLanguageEncoder(frozen=False, **TINY)
    assert all(p.requires_grad for p in trainable.parameters())
    emb = trainable.class_embeddings(['cat'], templates=('a {}.',), train=True, rng=random.Random(0))
    emb.sum().backward()
    assert trainable.lang_proj.grad is not None
    with pytest.raises(ValueError, match='exactly one'):
        SEEMLanguageEncoder(templates=('no placeholder',), **TINY)


def test_full_size_parameter_count():
    """SEEM's language encoder (width 512, 12 layers, vocab 49408, context 77, DIM_PROJ 512): 63,428,097."""
    with torch.device('meta'):
        enc = SEEMLanguageEncoder()
    official = {f'sem_seg_head.predictor.lang_encoder.{k}': s for k, s in official_lang_encoder_shapes().items()}
    mapped, unmatched = seem_backbone_pixel_lang_keys(official)
    assert not unmatched
    assert {k.removeprefix('text_encoder.'): s for k, s in mapped.items()} == {
        k: tuple(v.shape) for k, v in enc.state_dict().items()}
    assert sum(p.numel() for p in enc.parameters()) == 63_428_097
