"""Class heads: cosine logits with max over synonyms, FC-CLIP's in-vocab head, Mask2Former's linear head."""
import math

import pytest
import torch
import torch.nn.functional as F

from ovseg.models.heads import InVocabClassifier, LinearClassHead, get_classification_logits
from ovseg.models.layers import mask_pooling, mask_pooling_weights
from ovseg.models.segmentors import append_void_classifier
from ovseg.registry import MODELS


def test_get_classification_logits_max_over_synonyms_and_clamp():
    torch.manual_seed(0)
    text = F.normalize(torch.randn(6, 5), dim=-1)  # 5 synonym rows + void
    x = torch.randn(2, 3, 5)
    nums = [2, 1, 2]
    logits = get_classification_logits(x, text, torch.tensor(math.log(1000.0)), nums)
    sims = 100.0 * F.normalize(x, dim=-1) @ text.T  # scale clamped to 100
    expected = torch.stack([sims[..., :2].max(-1).values, sims[..., 2], sims[..., 3:5].max(-1).values,
                            sims[..., 5]], dim=-1)
    assert logits.shape == (2, 3, 4)
    assert torch.allclose(logits, expected, atol=1e-4)
    with pytest.raises(ValueError):
        get_classification_logits(x, text, torch.tensor(0.0), [2, 2])


def test_in_vocab_classifier_names_and_forward():
    head = MODELS.build(dict(type='InVocabClassifier', hidden_dim=256, embed_dim=768))
    names = {k: tuple(v.shape) for k, v in head.state_dict().items()}
    assert names == {
        '_mask_pooling_proj.0.weight': (256,), '_mask_pooling_proj.0.bias': (256,),
        '_mask_pooling_proj.1.weight': (256, 256), '_mask_pooling_proj.1.bias': (256,),
        'class_embed.layers.0.weight': (256, 256), 'class_embed.layers.0.bias': (256,),
        'class_embed.layers.1.weight': (256, 256), 'class_embed.layers.1.bias': (256,),
        'class_embed.layers.2.weight': (768, 256), 'class_embed.layers.2.bias': (768,),
        'logit_scale': ()}
    assert math.isclose(head.logit_scale.item(), math.log(1 / 0.07), rel_tol=1e-6)
    assert head.logit_scale.requires_grad
    small = InVocabClassifier(hidden_dim=16, embed_dim=8)
    q, mf, om = torch.randn(2, 5, 16), torch.randn(2, 16, 8, 8), torch.randn(2, 5, 4, 4)
    text = append_void_classifier(F.normalize(torch.randn(4, 8), dim=-1), torch.randn(1, 8))
    logits = small(q, mask_pooling(mf, om), text, [1, 2, 1])
    assert torch.equal(small.region_weights(om, (8, 8)), mask_pooling_weights(om, (8, 8)))
    assert logits.shape == (2, 5, 4)
    emb = small.class_embed(small._mask_pooling_proj(mask_pooling(mf, om)) + q)
    assert torch.allclose(logits, get_classification_logits(emb, text, small.logit_scale, [1, 2, 1]))
    # the public region embedding (DreamMask's SRA) is the same map without the query term
    pooled = torch.randn(7, 16)
    assert torch.allclose(small.region_embedding(pooled), small.class_embed(small._mask_pooling_proj(pooled)))
    logits.sum().backward()
    assert small.logit_scale.grad is not None and small.class_embed.layers[0].weight.grad is not None


def test_linear_class_head_names_and_forward():
    head = MODELS.build(dict(type='LinearClassHead', hidden_dim=32, num_classes=5))
    assert {k: tuple(v.shape) for k, v in head.state_dict().items()} == {
        'class_embed.weight': (6, 32), 'class_embed.bias': (6,)}  # Mask2Former's predictor.class_embed
    q = torch.randn(2, 4, 32)
    assert torch.equal(head(q), head.class_embed(q))
    assert isinstance(head, LinearClassHead)
