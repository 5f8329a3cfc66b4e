"""Sa2VA language side: toy tokenizer + special tokens, templates and prompt strings, xtuner-style label masking,
image-token expansion, collate padding, greedy generation's [SEG] hidden states against a full forward,
LLM building (InternLM2 refused), and the LoRA declaration through the core wrapper."""
import pytest
import torch
from torch import nn

from ovseg.models.peft import apply_peft
from projects.sa2va_sft.sa2va_sft.language import (
    ANSWER_LIST,
    EVAL_SEG_QUESTION,
    IGNORE_INDEX,
    PROMPT_TEMPLATES,
    SEG_QUESTIONS,
    SEG_QUESTIONS_V1,
    add_sa2va_tokens,
    build_toy_tokenizer,
    collate_conversations,
    encode_conversation,
    expand_image_tokens,
    get_template,
    load_release_tokenizer,
    stop_token_ids,
)
from projects.sa2va_sft.sa2va_sft.language_model import (
    SA2VA_LORA_TARGETS,
    TINY_QWEN2,
    build_language_model,
    greedy_generate_with_seg,
    sa2va_lora_config,
    verify_sa2va_lora,
)

WORDS = ['the red circle on the left', 'the large star']


@pytest.fixture(autouse=True)
def one_thread():
    """The tiny model is faster on one thread, and the CI machine is shared."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def tok():
    t = build_toy_tokenizer(WORDS)
    add_sa2va_tokens(t)
    return t


def _tiny_lm(vocab: int, seed: int = 0, **over) -> nn.Module:
    torch.manual_seed(seed)
    return build_language_model(dict(TINY_QWEN2, vocab_size=vocab, **over)).eval()


# ------------------------------------------------------------------------------------------------ tokenizer
def test_toy_tokenizer_round_trip_with_special_tokens(tmp_path):
    tok = build_toy_tokenizer(WORDS)
    base = len(tok)
    ids = add_sa2va_tokens(tok)
    assert len(tok) == base + 8
    # image tokens first (as in InternVL's tokenizer), then Sa2VA's five in source order
    assert [ids[k] for k in ('img_start', 'img_end', 'img_context', 'seg', 'p_start', 'p_end', 'vp_start',
                             'vp_end')] == list(range(base, base + 8))
    text = '<|im_start|>user\n<img><IMG_CONTEXT><IMG_CONTEXT></img>the red circle?<|im_end|>[SEG]<p>x</p><vp></vp>'
    enc = tok.encode(text, add_special_tokens=False)
    assert tok.convert_ids_to_tokens(enc) == [
        '<|im_start|>', 'user', '<img>', '<IMG_CONTEXT>', '<IMG_CONTEXT>', '</img>', 'the', 'red', 'circle', '?',
        '<|im_end|>', '[SEG]', '<p>', '[UNK]', '</p>', '<vp>', '</vp>']
    assert enc.count(ids['img_context']) == 2 and enc.count(ids['seg']) == 1
    assert tok.decode([ids['seg']]) == '[SEG]' and tok.eos_token == '<|im_end|>' and tok.bos_token is None
    # adding again changes nothing
    assert add_sa2va_tokens(tok) == ids and len(tok) == base + 8
    tok.save_pretrained(tmp_path / 'tok')
    again = load_release_tokenizer(tmp_path / 'tok')
    assert again.encode(text, add_special_tokens=False) == enc
    assert add_sa2va_tokens(again) == ids


def test_load_release_tokenizer_errors_name_the_folder(tmp_path):
    (tmp_path / 'config.json').write_text('{}')
    with pytest.raises(FileNotFoundError, match=r'has no tokenizer files.*config\.json'):
        load_release_tokenizer(tmp_path)
    with pytest.raises(FileNotFoundError, match='nope'):
        load_release_tokenizer(tmp_path / 'nope')


@pytest.mark.parametrize('tied', [False, True])
def test_add_tokens_grows_embeddings_with_the_mean_row(tied):
    tok = build_toy_tokenizer(WORDS)
    base = len(tok)
    lm = _tiny_lm(base, tie_word_embeddings=tied)
    x = torch.arange(2, 12)[None]
    with torch.no_grad():
        logits_before = lm(input_ids=x).logits
    old_in = lm.get_input_embeddings().weight.detach().clone()
    old_out = lm.get_output_embeddings().weight.detach().clone()
    ids = add_sa2va_tokens(tok, lm)
    w_in, w_out = lm.get_input_embeddings().weight, lm.get_output_embeddings().weight
    assert w_in.shape == (base + 8, 64) and w_out.shape == (base + 8, 64)
    assert torch.equal(w_in[:base], old_in)
    assert torch.allclose(w_in[ids['seg']], old_in.mean(0), atol=1e-6)
    assert torch.allclose(w_in[base:], old_in.mean(0).expand(8, -1), atol=1e-6)
    assert (w_out.data_ptr() == w_in.data_ptr()) == tied
    if not tied:
        assert torch.equal(w_out[:base], old_out)
        assert torch.allclose(w_out[base:], old_out.mean(0).expand(8, -1), atol=1e-6)
    # logits over the old vocabulary are unchanged by the resize; new tokens score the mean logit
    with torch.no_grad():
        logits = lm(input_ids=x).logits
    assert logits.shape[-1] == base + 8 and torch.allclose(logits[..., :base], logits_before, atol=1e-6)
    assert torch.allclose(logits[..., ids['seg']], logits_before.mean(-1), atol=1e-5)


# ------------------------------------------------------------------------------------------------ templates
def test_template_and_prompt_strings():
    q = PROMPT_TEMPLATES['qwen_chat']
    assert q['INSTRUCTION'] == '<|im_start|>user\n{input}<|im_end|>\n<|im_start|>assistant\n'
    assert q['SUFFIX'] == '<|im_end|>' and q['SEP'] == '\n' and q['SUFFIX_AS_EOS'] is True
    p = get_template('phi3-chat')
    assert p['INSTRUCTION'] == '<|user|>\n{input}<|end|>\n<|assistant|>\n' and p['SUFFIX'] == '<|end|>'
    with pytest.raises(ValueError, match='internlm2_chat'):
        get_template('internlm2_chat')
    assert EVAL_SEG_QUESTION.format(sent='the dog') == '<image>\n Please segment the dog in this image.'
    assert len(SEG_QUESTIONS) == len(SEG_QUESTIONS_V1) == 16 and len(ANSWER_LIST) == 5
    assert SEG_QUESTIONS[6] == 'What is {class_name} in this image? Please respond with segmentation mask?'
    assert SEG_QUESTIONS_V1[4] == 'Can you segment the {class_name} in this image'
    assert ANSWER_LIST[3] == 'Sure, the segmentation result is [SEG].'
    assert all(a.count('[SEG]') == 1 for a in ANSWER_LIST)
    assert all(q.count('{class_name}') == 1 for q in SEG_QUESTIONS + SEG_QUESTIONS_V1)


def test_stop_ids(tok):
    im_end, eot = tok.convert_tokens_to_ids(['<|im_end|>', '<|endoftext|>'])
    assert stop_token_ids(tok) == [im_end, eot]
    assert stop_token_ids(tok, 'phi3_chat') == [im_end, tok.convert_tokens_to_ids('<|end|>')]


def test_expand_image_tokens_count():
    out = expand_image_tokens('<image>\nPlease segment x.', 5)
    assert out == '<img>' + '<IMG_CONTEXT>' * 5 + '</img>\nPlease segment x.'
    video = expand_image_tokens('<image>q', 3, num_frames=2)
    assert video.count('<IMG_CONTEXT>') == 6 and video.count('<img>') == 2 and video.count('</img>\n<img>') == 1
    with pytest.raises(ValueError, match='exactly one'):
        expand_image_tokens('no image', 4)
    with pytest.raises(ValueError, match='>= 1'):
        expand_image_tokens('<image>', 0)


# --------------------------------------------------------------------------------------------- encoding
def test_label_masking_supervises_only_answers_and_suffix(tok):
    turns = [(EVAL_SEG_QUESTION.format(sent='the red circle'), 'Sure, it is [SEG].'),
             ('Please segment the large star in this image.', ' [SEG]. ')]
    enc = encode_conversation(tok, turns, num_image_tokens=7)
    ids, labels = enc['input_ids'], enc['labels']
    assert ids.dtype == labels.dtype == torch.long and enc['attention_mask'].sum() == len(ids)
    toks = tok.convert_ids_to_tokens(ids.tolist())
    expected = (['<|im_start|>', 'user', '<img>'] + ['<IMG_CONTEXT>'] * 7 +
                ['</img>', 'Please', 'segment', 'the', 'red', 'circle', 'in', 'this', 'image', '.', '<|im_end|>',
                 '<|im_start|>', 'assistant', 'Sure', ',', 'it', 'is', '[SEG]', '.', '<|im_end|>',
                 '<|im_start|>', 'user', 'Please', 'segment', 'the', 'large', 'star', 'in', 'this', 'image', '.',
                 '<|im_end|>', '<|im_start|>', 'assistant', '[SEG]', '.', '<|im_end|>'])
    assert toks == expected  # whitespace (the template's "\n" and SEP) vanishes in the word-level toy
    supervised = labels != IGNORE_INDEX
    assert int(supervised.sum()) == 7 + 3  # "Sure , it is [SEG] ." + <|im_end|>, then "[SEG] ." + <|im_end|>
    assert tok.convert_ids_to_tokens(labels[supervised].tolist()) == [
        'Sure', ',', 'it', 'is', '[SEG]', '.', '<|im_end|>', '[SEG]', '.', '<|im_end|>']
    assert torch.equal(labels[supervised], ids[supervised])
    # without num_image_tokens the placeholder is dropped (Sa2VA's text-only path)
    plain = encode_conversation(tok, turns[:1])
    assert tok.convert_ids_to_tokens(plain['input_ids'][:4].tolist()) == ['<|im_start|>', 'user', 'Please', 'segment']


def test_encode_with_bos_and_eos_rules(tok):
    """A tokenizer with a BOS gets it on the first turn only; a template without SUFFIX_AS_EOS adds a
    supervised EOS after each answer (xtuner tokenize_conversation)."""
    tok.bos_token = '<|system|>'
    tpl = dict(PROMPT_TEMPLATES['qwen_chat'], SUFFIX_AS_EOS=False)
    enc = encode_conversation(tok, [('a', 'It is [SEG].'), ('b', '[SEG].')], template=tpl)
    toks = tok.convert_ids_to_tokens(enc['input_ids'].tolist())
    assert toks.count('<|system|>') == 2  # BOS before each turn: need_eos_token → next turn needs BOS again
    sup = tok.convert_ids_to_tokens(enc['labels'][enc['labels'] != IGNORE_INDEX].tolist())
    assert sup == ['It', 'is', '[SEG]', '.', '<|im_end|>', '<|im_end|>', '[SEG]', '.', '<|im_end|>', '<|im_end|>']


def test_encode_errors_and_truncation(tok):
    with pytest.raises(ValueError, match='only allowed in the first'):
        encode_conversation(tok, [('<image> a', 'x'), ('<image> b', 'y')], num_image_tokens=2)
    with pytest.raises(ValueError, match='has no'):
        encode_conversation(tok, [('a', 'x')], num_image_tokens=2)
    turns = [('<image>\nPlease segment the star.', 'It is [SEG].'), ('Please segment the circle.', '[SEG].')]
    full = encode_conversation(tok, turns, num_image_tokens=10)
    cut = encode_conversation(tok, turns, num_image_tokens=10, max_length=20)
    assert len(cut['input_ids']) == 20 and torch.equal(cut['input_ids'], full['input_ids'][:20])
    # <|im_start|> user <img> + 10 x <IMG_CONTEXT> + </img>: 14 tokens
    with pytest.raises(ValueError, match='image block ends at token 14'):
        encode_conversation(tok, turns, num_image_tokens=10, max_length=12)


def test_collate_right_pads(tok):
    a = encode_conversation(tok, [('<image> the star', 'It is [SEG].')], num_image_tokens=3)
    b = encode_conversation(tok, [('<image> the star', 'It is [SEG].')], num_image_tokens=9)
    a['extra'] = 'x'
    batch = collate_conversations([a, b], pad_token_id=tok.pad_token_id)
    n_a, n_b = len(a['input_ids']), len(b['input_ids'])
    assert n_b == n_a + 6 and batch['input_ids'].shape == (2, n_b)
    assert batch['input_ids'][0, n_a:].tolist() == [tok.pad_token_id] * 6
    assert batch['labels'][0, n_a:].tolist() == [IGNORE_INDEX] * 6
    assert batch['attention_mask'].sum(1).tolist() == [n_a, n_b]
    assert torch.equal(batch['input_ids'][0, :n_a], a['input_ids']) and torch.equal(batch['labels'][1], b['labels'])
    assert batch['extra'] == ['x', None]
    with pytest.raises(KeyError, match='item 0 lacks'):
        collate_conversations([{'input_ids': a['input_ids']}], 0)


# ------------------------------------------------------------------------------------------- generation
def _overfit(tok, turns, steps=80):
    """Teach the tiny LM one answer so greedy decoding emits [SEG] and stops."""
    lm = _tiny_lm(len(tok)).train()
    enc = encode_conversation(tok, turns, num_image_tokens=4)
    opt = torch.optim.AdamW(lm.parameters(), lr=1e-2)
    for _ in range(steps):
        loss = lm(input_ids=enc['input_ids'][None], labels=enc['labels'][None]).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.05
    return lm.eval(), enc


def test_generation_returns_the_seg_state_of_a_full_forward(tok):
    seg = tok.convert_tokens_to_ids('[SEG]')
    lm, enc = _overfit(tok, [(EVAL_SEG_QUESTION.format(sent='the red circle'), 'Sure, it is [SEG].')])
    n_prompt = int((enc['labels'] != IGNORE_INDEX).nonzero()[0])
    prompt = enc['input_ids'][:n_prompt]
    emb = lm.get_input_embeddings()
    gen = greedy_generate_with_seg(lm, emb(prompt[None]), None, seg, stop_token_ids(tok), max_new_tokens=20)
    assert tok.convert_ids_to_tokens(gen.sequences[0].tolist()) == ['Sure', ',', 'it', 'is', '[SEG]', '.',
                                                                    '<|im_end|>']
    assert len(gen.seg_hidden_states) == 1 and gen.seg_hidden_states[0].shape == (1, 64)
    full = torch.cat([prompt, gen.sequences[0]])
    with torch.no_grad():
        hidden = lm(input_ids=full[None], output_hidden_states=True).hidden_states[-1][0]
    at_seg = hidden[n_prompt:][gen.sequences[0] == seg]  # the state where [SEG] is the input token
    assert torch.allclose(gen.seg_hidden_states[0], at_seg, atol=1e-5)
    assert not torch.allclose(gen.seg_hidden_states[0], hidden[n_prompt + 3], atol=1e-3)  # not the one before
    # same ids as transformers' generate
    with torch.no_grad():
        ref = lm.generate(inputs_embeds=emb(prompt[None]), attention_mask=torch.ones(1, n_prompt, dtype=torch.long),
                          max_new_tokens=20, do_sample=False, eos_token_id=stop_token_ids(tok),
                          pad_token_id=tok.pad_token_id)
    assert torch.equal(ref[0], gen.sequences[0])
    # max_new_tokens ending on [SEG]: Sa2VA drops it, 'forward' computes it
    short = greedy_generate_with_seg(lm, emb(prompt[None]), None, seg, stop_token_ids(tok), max_new_tokens=5)
    assert short.sequences[0, -1] == seg and short.seg_hidden_states[0].shape == (0, 64)
    fwd = greedy_generate_with_seg(lm, emb(prompt[None]), None, seg, stop_token_ids(tok), max_new_tokens=5,
                                   final_seg='forward')
    assert torch.allclose(fwd.seg_hidden_states[0], at_seg, atol=1e-5)


def test_generation_left_padded_batch_matches_single(tok):
    seg = tok.convert_tokens_to_ids('[SEG]')
    lm, enc = _overfit(tok, [('<image>\nPlease segment the large star.', 'It is [SEG].')])
    n_prompt = int((enc['labels'] != IGNORE_INDEX).nonzero()[0])
    emb = lm.get_input_embeddings()
    long_p = enc['input_ids'][:n_prompt]
    short_p = torch.cat([long_p[:2], long_p[6:]])  # 4 fewer image tokens
    single = [greedy_generate_with_seg(lm, emb(p[None]), None, seg, stop_token_ids(tok), 12) for p in (long_p, short_p)]
    pad = tok.pad_token_id
    batch_ids = torch.stack([long_p, torch.cat([torch.full((4,), pad), short_p])])
    mask = (torch.arange(n_prompt)[None] >= torch.tensor([[0], [4]])).long()
    out = greedy_generate_with_seg(lm, emb(batch_ids), mask, seg, stop_token_ids(tok), 12, pad_token_id=pad)
    for i, ref in enumerate(single):
        n = ref.sequences.shape[1]
        assert torch.equal(out.sequences[i, :n], ref.sequences[0])
        assert (out.sequences[i, n:] == pad).all()
        assert torch.allclose(out.seg_hidden_states[i], ref.seg_hidden_states[0], atol=1e-5)
    with pytest.raises(ValueError, match='left-padded'):
        greedy_generate_with_seg(lm, emb(batch_ids), mask.flip(1), seg, stop_token_ids(tok), 4)


def test_multi_token_stop_sequence(tok):
    lm = _tiny_lm(len(tok))
    emb = lm.get_input_embeddings()
    prompt = emb(torch.arange(10, 20)[None])
    free = greedy_generate_with_seg(lm, prompt, None, -1, [10_000], max_new_tokens=8).sequences[0]
    stop = (int(free[2]), int(free[3]))
    cut = greedy_generate_with_seg(lm, prompt, None, -1, [stop], max_new_tokens=8).sequences[0]
    assert torch.equal(cut, free[:4])


# --------------------------------------------------------------------------------------------- LLM + LoRA
def test_build_language_model_types_and_internlm2_refused():
    from transformers import AutoConfig

    assert type(_tiny_lm(50)).__name__ == 'Qwen2ForCausalLM'
    assert type(build_language_model(dict(TINY_QWEN2, model_type='qwen3', head_dim=16, vocab_size=50))).__name__ \
        == 'Qwen3ForCausalLM'
    cfg = AutoConfig.for_model('llama', **{k: v for k, v in TINY_QWEN2.items() if k != 'model_type'}, vocab_size=50)
    assert type(build_language_model(cfg)).__name__ == 'LlamaForCausalLM'
    with pytest.raises(ValueError, match='out of scope: Sa2VA-8B/26B'):
        build_language_model(dict(architectures=['InternLM2ForCausalLM'], model_type='internlm2', vocab_size=9))
    with pytest.raises(ValueError, match='vocab_size'):
        build_language_model(TINY_QWEN2)
    with pytest.raises(ValueError, match="'phi3' is not supported"):
        build_language_model(dict(model_type='phi3', vocab_size=9))


def test_lora_targets_through_core_wrapper():
    pytest.importorskip('peft')

    class Holder(nn.Module):
        def __init__(self):
            super().__init__()
            self.language_model = _tiny_lm(60)

    model = Holder()
    cfg = sa2va_lora_config()
    assert (cfg['r'], cfg['alpha'], cfg['dropout'], cfg['module']) == (128, 256.0, 0.05, 'language_model')
    with pytest.raises(ValueError, match='LoRA missing on 14'):
        verify_sa2va_lora(model.language_model)
    applied = apply_peft(model, cfg)
    names = applied['0:LoRA']
    assert len(names) == 2 * 7 and all(n.startswith('language_model.model.layers.') for n in names)
    assert verify_sa2va_lora(model.language_model) == 14
    for layer in model.language_model.model.layers:
        for leaf in SA2VA_LORA_TARGETS:
            mod = layer.get_submodule(('self_attn.' if leaf in ('q_proj', 'k_proj', 'v_proj', 'o_proj') else 'mlp.')
                                      + leaf)
            assert mod.lora_A['default'].weight.shape[0] == 128 and mod.lora_B['default'].weight.shape[1] == 128
            assert mod.scaling['default'] == 2.0
    assert not hasattr(model.language_model.lm_head, 'lora_A')
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert len(trainable) == 28 and all('.lora_' in n for n in trainable)
