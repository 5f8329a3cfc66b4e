"""MaskedAttentionDecoder: parity with transformers' Mask2Former decoder, masked attention, gradients, official
names, class heads (FC-CLIP-style, linear, none), extra query groups, build.

transformers' ``Mask2FormerTransformerModule`` is an independent port of the same Mask2Former decoder
(cross-attn → self-attn → FFN, post-norm, round-robin levels, ``sigmoid < 0.5`` masks with empty rows opened,
predictions after the query init and after every layer). Only the class head differs (FC-CLIP's open-vocabulary
head vs a linear classifier), so with copied weights the *masks* of all predictions must coincide, and a
stand-in head ``logits = decoder_output @ text.T`` must equal transformers' normed intermediate states @ text.T.
"""
import pytest
import torch
from torch import nn
from transformers import Mask2FormerConfig
from transformers.models.mask2former.modeling_mask2former import Mask2FormerTransformerModule

from ovseg.models.decoders import MaskedAttentionDecoder, masked_attention_mask
from ovseg.models.heads import LinearClassHead
from ovseg.registry import MODELS
from tests.helpers.fcclip_keys import official_entries


class DotHead(nn.Module):
    """Stand-in with InVocabClassifier's call signature: logits = decoder_output · text classifierᵀ."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(()))
        self.dim = dim

    def forward(self, query_feats, region_feats, text_classifier, num_templates):
        assert query_feats.shape[-1] == self.dim and region_feats is None
        return self.scale * query_feats @ text_classifier.t()


@MODELS.register_module(name='_TestDotClassHead', force=True)
class _RegisteredDotHead(DotHead):
    pass


def _small(dec_layers=3, **kw):
    cfg = dict(in_channels=16, hidden_dim=32, num_queries=6, nheads=4, dim_feedforward=64, dec_layers=dec_layers,
               mask_dim=32, class_head=DotHead(32))
    cfg.update(kw)
    return MaskedAttentionDecoder(**cfg)


def _cls(text):
    return dict(text_classifier=text, num_templates=[1] * text.shape[0])


def _inputs(b=2, c=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    ms = [torch.randn(b, c, h, w, generator=g) for h, w in ((2, 3), (4, 6), (8, 12))]
    return ms, torch.randn(b, 32, 16, 24, generator=g), torch.randn(7, 32, generator=g)


def _to_transformers_state(ours: dict) -> dict:
    """Our (official FC-CLIP ``predictor.*``) names → transformers' Mask2FormerTransformerModule names."""
    out = {}
    for k, v in ours.items():
        if k.startswith('class_head.'):
            continue
        parts = k.split('.')
        if k.startswith('transformer_self_attention_layers.'):
            i, rest = parts[1], '.'.join(parts[2:])
            pre = f'decoder.layers.{i}.'
            if rest.startswith('self_attn.in_proj_'):
                kind = rest.rsplit('_', 1)[1]  # weight / bias
                for name, chunk in zip(('q', 'k', 'v'), v.chunk(3, 0)):
                    out[f'{pre}self_attn.{name}_proj.{kind}'] = chunk
                continue
            out[pre + rest.replace('norm.', 'self_attn_layer_norm.')] = v
        elif k.startswith('transformer_cross_attention_layers.'):
            rest = '.'.join(parts[2:]).replace('multihead_attn.', 'cross_attn.')
            rest = rest.replace('norm.', 'cross_attn_layer_norm.')
            out[f'decoder.layers.{parts[1]}.{rest}'] = v
        elif k.startswith('transformer_ffn_layers.'):
            rest = '.'.join(parts[2:]).replace('linear1', 'fc1').replace('linear2', 'fc2')
            out[f'decoder.layers.{parts[1]}.{rest.replace("norm.", "final_layer_norm.")}'] = v
        elif k.startswith('decoder_norm.'):
            out['decoder.layernorm.' + parts[1]] = v
        elif k.startswith('mask_embed.layers.'):
            out[f'decoder.mask_predictor.mask_embedder.{parts[2]}.0.{parts[3]}'] = v
        elif k.startswith('query_feat.'):
            out['queries_features.weight'] = v
        elif k.startswith('query_embed.'):
            out['queries_embedder.weight'] = v
        elif k.startswith('input_proj.'):
            out['input_projections.' + '.'.join(parts[1:])] = v
        else:
            out[k] = v  # level_embed.weight
    return out


@pytest.mark.parametrize('pre_norm', [False, True])
def test_matches_transformers_mask2former_decoder(pre_norm):
    torch.manual_seed(0)
    dec = _small(dec_layers=4, pre_norm=pre_norm).eval()
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():  # move LayerNorm/bias params off their 1/0 init so a wrong wiring cannot hide
        for name, p in dec.named_parameters():
            if not name.startswith('class_head'):
                p.add_(0.05 * torch.randn(p.shape, generator=g))
    cfg = Mask2FormerConfig(hidden_dim=32, num_queries=6, num_attention_heads=4, dim_feedforward=64,
                            decoder_layers=5, mask_feature_size=32, dropout=0.0, pre_norm=pre_norm,
                            enforce_input_projection=False)
    ref = Mask2FormerTransformerModule(16, cfg).eval()
    ref.load_state_dict(_to_transformers_state(dec.state_dict()), strict=True)
    ms, mask_features, text = _inputs()
    with torch.no_grad():
        out = dec(ms, mask_features, _cls(text))
        expected = ref(ms, mask_features)
    ours_masks = [a['pred_masks'] for a in out['aux_outputs']] + [out['pred_masks']]
    ours_logits = [a['pred_logits'] for a in out['aux_outputs']] + [out['pred_logits']]
    assert len(ours_masks) == len(expected.masks_queries_logits) == 5
    for mine, theirs in zip(ours_masks, expected.masks_queries_logits):
        torch.testing.assert_close(mine, theirs, atol=1e-4, rtol=1e-4)
    for mine, hidden in zip(ours_logits, expected.intermediate_hidden_states):
        torch.testing.assert_close(mine, hidden.transpose(0, 1) @ text.t(), atol=1e-4, rtol=1e-4)


def test_masked_attention_masks_fed_to_each_layer():
    """Each layer's cross-attention gets ``sigmoid(resize(previous masks)) < 0.5`` at its level, per head,
    with fully-blocked rows opened; the scenario contains both fully-blocked and partial rows."""
    torch.manual_seed(0)
    dec = _small(dec_layers=6)
    ms, mask_features, text = _inputs()
    # channel 0 dominates: queries with a negative channel-0 weight get an all-negative mask (fully blocked)
    mask_features[:, 0] = 3.0
    captured = []
    for layer in dec.transformer_cross_attention_layers:
        layer.register_forward_pre_hook(lambda mod, args: captured.append(args[2].clone()))
    out = dec(ms, mask_features, _cls(text))
    preds = [a['pred_masks'] for a in out['aux_outputs']] + [out['pred_masks']]
    sizes = [x.shape[-2:] for x in ms]
    saw_open_row = saw_partial_row = False
    for i, got in enumerate(captured):
        logits = torch.nn.functional.interpolate(preds[i], size=sizes[i % 3], mode='bilinear', align_corners=False)
        blocked = logits.sigmoid().flatten(2) < 0.5  # B × Q × hw
        full = blocked.all(-1)
        saw_open_row |= bool(full.any())
        saw_partial_row |= bool((blocked.any(-1) & ~full).any())
        expected = blocked & ~full[..., None]
        assert got.shape == (2 * 4, 6, sizes[i % 3].numel())
        assert torch.equal(got.view(2, 4, 6, -1), expected[:, None].expand(-1, 4, -1, -1))
    assert saw_open_row and saw_partial_row
    assert torch.isfinite(out['pred_masks']).all() and torch.isfinite(out['pred_logits']).all()


def test_masked_attention_mask_function():
    logits = torch.tensor([[[[-1.0, 2.0], [-3.0, -0.5]],    # partly blocked
                            [[-1.0, -2.0], [-3.0, -0.5]]]])  # fully blocked → opened
    m = masked_attention_mask(logits, (2, 2), num_heads=2)
    assert m.shape == (2, 2, 4) and m.dtype == torch.bool
    assert m[0, 0].tolist() == [True, False, True, True] and not m[:, 1].any()
    assert torch.equal(m[0], m[1])


def test_default_depth_gives_ten_predictions_and_all_params_get_gradients():
    torch.manual_seed(0)
    dec = _small(dec_layers=9)  # FC-CLIP's DEC_LAYERS 10 → 9 layers + the query-init prediction
    ms, mask_features, text = _inputs()
    out = dec(ms, mask_features, _cls(text))
    assert out['pred_logits'].shape == (2, 6, 7) and out['pred_masks'].shape == (2, 6, 16, 24)
    assert len(out['aux_outputs']) == 9
    assert all(a['pred_logits'].shape == (2, 6, 7) and a['pred_masks'].shape == (2, 6, 16, 24)
               for a in out['aux_outputs'])
    loss = sum(o['pred_logits'].pow(2).mean() + o['pred_masks'].pow(2).mean()
               for o in out['aux_outputs'] + [out])
    loss.backward()
    missing = [n for n, p in dec.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert missing == []


def test_build_from_config_with_class_head_dict():
    dec = MODELS.build(dict(type='MaskedAttentionDecoder', in_channels=32, hidden_dim=32, num_queries=4, nheads=4,
                            dim_feedforward=32, dec_layers=2, mask_dim=32,
                            class_head=dict(type='_TestDotClassHead', dim=32)))
    assert isinstance(dec.class_head, _RegisteredDotHead)
    assert all(isinstance(p, nn.Sequential) for p in dec.input_proj)  # no projection when dims agree


def test_state_dict_matches_official_fcclip_names():
    """Every official ``sem_seg_head.predictor.*`` entry outside the class head exists with its shape."""
    head = ('class_embed.', '_mask_pooling_proj.', 'logit_scale')
    entries = official_entries('convnext_large', 'sem_seg_head.predictor.')
    official = {k: shape for k, (shape, _) in entries.items() if not k.startswith(head)}
    dec = MaskedAttentionDecoder(num_queries=250, class_head=DotHead(256))
    ours = {k: tuple(v.shape) for k, v in dec.state_dict().items() if not k.startswith('class_head.')}
    assert ours == official


def test_linear_head_and_mask_only_decoder():
    torch.manual_seed(0)
    ms, mask_features, _ = _inputs()
    dec = _small(class_head=LinearClassHead(hidden_dim=32, num_classes=5))
    out = dec(ms, mask_features)
    assert out['pred_logits'].shape == (2, 6, 6) and out['query_feats'].shape == (2, 6, 32)
    assert torch.allclose(out['pred_logits'], dec.class_head.class_embed(out['query_feats']))
    masks_only = _small(class_head=None)
    out = masks_only(ms, mask_features)
    assert 'pred_logits' not in out and out['pred_masks'].shape == (2, 6, 16, 24)
    assert all('pred_logits' not in a for a in out['aux_outputs'])


def test_extra_query_groups_predict_masks_and_can_be_isolated():
    """Extra queries (SEEM's grounding/spatial queries) get masks every layer; when self-attention is masked so
    that object queries cannot see them, the object predictions equal those of a run without them."""
    torch.manual_seed(0)
    dec = _small(dec_layers=3).eval()
    ms, mask_features, text = _inputs()
    g = torch.Generator().manual_seed(3)
    extra = {'grounding': (torch.randn(2, 3, 32, generator=g), torch.randn(2, 3, 32, generator=g)),
             'spatial': (torch.randn(2, 2, 32, generator=g), torch.randn(2, 2, 32, generator=g))}
    length = 6 + 3 + 2
    block = torch.zeros(length, length, dtype=torch.bool)
    block[:6, 6:] = True  # object queries never attend to the extra groups
    with torch.no_grad():
        alone = dec(ms, mask_features, _cls(text))
        mixed = dec(ms, mask_features, _cls(text), extra_queries=extra, self_attn_mask=block)
        open_ = dec(ms, mask_features, _cls(text), extra_queries=extra)
    assert mixed['extra']['grounding']['pred_masks'].shape == (2, 3, 16, 24)
    assert mixed['extra']['spatial']['query_feats'].shape == (2, 2, 32)
    assert len(mixed['extra']['grounding']['aux_outputs']) == 3
    torch.testing.assert_close(mixed['pred_masks'], alone['pred_masks'], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(mixed['pred_logits'], alone['pred_logits'], atol=1e-5, rtol=1e-5)
    assert not torch.allclose(open_['pred_masks'], alone['pred_masks'], atol=1e-3)  # without the mask they mix
    with pytest.raises(ValueError, match='self_attn_mask'):
        dec(ms, mask_features, _cls(text), extra_queries=extra, self_attn_mask=block[:5, :5])
    with pytest.raises(ValueError, match='grounding'):
        dec(ms, mask_features, _cls(text), extra_queries={'grounding': (extra['grounding'][0], torch.zeros(2, 3, 8))})


def test_class_head_scores_every_prediction_as_if_called_per_layer():
    """The head runs once on all predictions; a region-pooling head (FC-CLIP's) gives exactly what calling it on
    each prediction's queries and masks would."""
    from ovseg.models.heads import InVocabClassifier
    from ovseg.models.layers import mask_pooling
    torch.manual_seed(0)
    head = InVocabClassifier(hidden_dim=32, embed_dim=16)
    dec = _small(dec_layers=3, class_head=head).eval()
    ms, mask_features, _ = _inputs()
    text = torch.nn.functional.normalize(torch.randn(5, 16), dim=-1)
    inputs = dict(text_classifier=text, num_templates=[2, 1, 1])
    with torch.no_grad():
        out = dec(ms, mask_features, inputs)
        for pred in [out] + out['aux_outputs']:
            expected = head(pred['query_feats'], mask_pooling(mask_features, pred['pred_masks']), **inputs)
            # batched vs per-prediction products sum in another order: float32 rounding (~1e-6) on some CPUs
            torch.testing.assert_close(pred['pred_logits'], expected, atol=1e-5, rtol=1e-5)
