"""SEEMDecoder: official parameter names, output shapes per task group, SEEM's self-attention mask structure
(attention_data_struct_seemv1.py + ATTENTION_ARCH), spatial point sampling and candidate selection."""
import pytest
import torch

from projects.seem_ft.seem_ft import SEEMDecoder, SEEMQueryLayout, rand_sample_prompt_points, seem_self_attn_mask
from tests.projects.seem_ft.tiny_seem import official_decoder_shapes

H, Q, L, M = 32, 6, 3, 4


@pytest.fixture(scope='module')
def dec():
    torch.manual_seed(0)
    return SEEMDecoder(in_channels=H, hidden_dim=H, dim_proj=16, num_queries=Q, nheads=2, dim_feedforward=48,
                       dec_layers=L, mask_dim=H, num_spatial_memories=M, max_spatial_len=(20, 20, 20, 20)).eval()


def _features(b=2):
    torch.manual_seed(1)
    return [torch.randn(b, H, 2, 2), torch.randn(b, H, 4, 4), torch.randn(b, H, 8, 8)], torch.randn(b, H, 16, 16)


class _Lang:
    logit_scale = torch.tensor(0.5)

    def compute_similarity(self, v, t):
        return self.logit_scale.exp() * (v / (v.norm(dim=-1, keepdim=True) + 1e-7)) @ t.t()


def test_parameter_names_and_shapes_are_seems(dec):
    want = official_decoder_shapes(H, 16, Q, 48, L, H, M)
    got = {k: tuple(v.shape) for k, v in dec.state_dict().items()}
    assert got == want


def test_object_queries_only():
    dec = SEEMDecoder(in_channels=H, hidden_dim=H, dim_proj=16, num_queries=Q, nheads=2, dim_feedforward=48,
                      dec_layers=L, mask_dim=H, spatial=False)
    ms, mf = _features()
    emb = torch.nn.functional.normalize(torch.randn(4, 16), dim=-1)  # 3 classes + background
    out = dec(ms, mf, class_inputs=dict(class_embeddings=emb, lang_encoder=_Lang()))
    assert out['pred_logits'].shape == (2, Q, 4) and out['pred_masks'].shape == (2, Q, 16, 16)
    assert out['pred_captions'].shape == (2, Q, 16) and len(out['aux_outputs']) == L
    assert 'pred_gmasks' not in out and 'prev_mask' not in out
    # class logits are the language encoder's similarity of decoder_norm(q) @ class_embed
    torch.testing.assert_close(out['pred_logits'], _Lang().compute_similarity(out['pred_captions'], emb))
    assert 'mask_sptial_embed.0' not in dec.state_dict()


def test_grounding_outputs_and_object_queries_unaffected(dec):
    ms, mf = _features()
    base = dec(ms, mf)
    tokens = torch.randn(2, 5, H)
    pad = torch.tensor([[False] * 5, [False, False, True, True, True]])
    out = dec(ms, mf, grounding_tokens=tokens, grounding_padding_mask=pad)
    assert out['pred_gmasks'].shape == (2, Q, 16, 16) and out['pred_gtexts'].shape == (2, Q, 16)
    assert all('pred_gmasks' in a for a in out['aux_outputs'])
    # object queries never see grounding queries or tokens, and cross-attention is per query: same outputs
    torch.testing.assert_close(out['pred_masks'], base['pred_masks'], atol=1e-5, rtol=1e-5)
    # padding tokens do not change the valid outputs
    tokens2 = tokens.clone()
    tokens2[1, 2:] = 100.0
    out2 = dec(ms, mf, grounding_tokens=tokens2, grounding_padding_mask=pad)
    assert torch.isfinite(out2['pred_gmasks']).all()
    torch.testing.assert_close(out2['pred_gmasks'], out['pred_gmasks'], atol=1e-5, rtol=1e-5)


def test_spatial_outputs_and_selection(dec):
    ms, mf = _features(1)
    pos = torch.zeros(2, 64, 64, dtype=torch.bool)
    pos[0, 10:13, 10:13] = True
    pos[1, 40:60, 30:50] = True
    out = dec(ms, mf, spatial_prompts=dict(pos=[pos]), generator=torch.Generator().manual_seed(0))
    assert out['pred_smasks'].shape == (1, 6, 16, 16) and out['pred_smaskembs'].shape == (1, 6, H)
    assert out['pred_pspatials'].shape == (1, 2, H) and out['prev_mask'].shape == (1, 2, 16, 16)
    # the selected mask of prompt k is one of its own 3 candidates, the best by mask-embedding · prompt-embedding
    for k in range(2):
        cand = out['pred_smaskembs'][0, 3 * k:3 * k + 3] @ out['pred_pspatials'][0, k]
        torch.testing.assert_close(out['prev_mask'][0, k], out['pred_smasks'][0, 3 * k + int(cand.argmax())])
    # a second round with the previous masks switches the spatial memories on
    out2 = dec(ms, mf, spatial_prompts=dict(pos=[pos]), prev_mask=out['prev_mask'])
    assert out2['prev_mask'].shape == (1, 2, 16, 16) and torch.isfinite(out2['prev_mask']).all()


def test_self_attention_mask_structure():
    layout = SEEMQueryLayout(object=3, grounding=3, spatial=6, memories=4, grounding_tokens=4, spatial_tokens=5)
    gpad = torch.tensor([[False, False, False, True]])
    tok_prompt = torch.tensor([[0, 0, 1, 1, -1]])  # last spatial token is padding
    q_prompt = torch.tensor([0, 0, 0, 1, 1, 1])
    mem_prompt = torch.tensor([0, 1, 1, 1])
    m = seem_self_attn_mask(layout, 1, grounding_padding=gpad, spatial_token_prompt=tok_prompt,
                            spatial_query_prompt=q_prompt, memory_prompt=mem_prompt, open_blocked_rows=False)[0]
    s = layout.slice
    allowed = ~m
    # object queries: only object queries (never grounding tokens / queries, spatial groups)
    assert allowed[s('object'), s('object')].all()
    assert not allowed[s('object')][:, layout.object:].any()
    # nothing but object queries attends to object queries
    assert not allowed[layout.object:, s('object')].any()
    # grounding queries see grounding queries and the valid grounding tokens only
    assert allowed[s('grounding'), s('grounding')].all()
    assert allowed[s('grounding'), s('grounding_tokens')][:, :3].all()
    assert not allowed[s('grounding'), s('grounding_tokens')][:, 3].any()
    assert not allowed[s('grounding'), s('spatial')].any() and not allowed[s('grounding'), s('spatial_tokens')].any()
    # valid grounding tokens see grounding queries and valid tokens; the padding token sees nothing
    gt = allowed[s('grounding_tokens')]
    assert gt[:3, s('grounding')].all() and gt[:3, s('grounding_tokens')][:, :3].all()
    assert not gt[3].any()
    # spatial queries: same-prompt queries, tokens and memories
    sq = allowed[s('spatial')]
    assert torch.equal(sq[:, s('spatial')], q_prompt[:, None] == q_prompt[None])
    assert torch.equal(sq[:, s('spatial_tokens')], q_prompt[:, None] == tok_prompt[0][None])
    assert torch.equal(sq[:, s('memories')], q_prompt[:, None] == mem_prompt[None])
    assert not sq[:, s('grounding_tokens')].any()
    # spatial tokens see only tokens of the same prompt index; memories only memories of their prompt
    st = allowed[s('spatial_tokens')]
    assert torch.equal(st[:, s('spatial_tokens')], tok_prompt[0][:, None] == tok_prompt[0][None])
    assert not st[:, :layout.num_cross].any()
    assert torch.equal(allowed[s('memories'), s('memories')], mem_prompt[:, None] == mem_prompt[None])
    assert not allowed[s('memories'), s('spatial')].any()
    # with opening, the fully blocked padding row becomes finite (never read by others)
    opened = seem_self_attn_mask(layout, 1, grounding_padding=gpad, spatial_token_prompt=tok_prompt,
                                 spatial_query_prompt=q_prompt, memory_prompt=mem_prompt)[0]
    assert not opened.all(-1).any()
    pad_row = layout.num_cross + 3
    others = torch.arange(layout.total) != pad_row
    assert torch.equal(opened[others], m[others])  # only the padding row changed: still blocked as a key
    assert opened[others, pad_row].all()


def test_rand_sample_prompt_points():
    m = torch.zeros(2, 10, 20, dtype=torch.bool)
    m[0, 2, 3] = True
    m[1, 5:9, 10:20] = True
    pts = rand_sample_prompt_points(m, 100)
    assert pts.shape == (41, 3)
    assert torch.equal(pts[0], torch.tensor([0.0, 0.2, 0.15]))
    few = rand_sample_prompt_points(m, 10, torch.Generator().manual_seed(0))
    assert few.shape == (10, 3) and (few[:, 0] == 0).sum() <= 1
    assert rand_sample_prompt_points(torch.zeros(1, 4, 4, dtype=torch.bool), 5).shape == (0, 3)
