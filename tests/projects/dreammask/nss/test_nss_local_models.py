"""Real local-model backends with tiny random-init models saved to disk: transformers causal LM and
diffusers GLIGEN. These exercise the actual loading code (``from_pretrained(local_files_only=True)``)."""
import json

import numpy as np
import pytest

from ovseg.vocabulary import SynonymIndex
from projects.dreammask.dreammask.nss.layout import Layout, LayoutObject, LLMLayoutGenerator


@pytest.mark.slow
def test_transformers_local_llm_tiny_gpt2(tmp_path):
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    from projects.dreammask.dreammask.nss.llm import TransformersLocalLLM
    words = ['<unk>', '<eos>', 'user', 'system', ':', 'ball', 'box', '<div', 'class="object"', '>', '</div>']
    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token='<unk>'))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    PreTrainedTokenizerFast(tokenizer_object=tok, unk_token='<unk>',
                            eos_token='<eos>').save_pretrained(tmp_path)
    GPT2LMHeadModel(
        GPT2Config(vocab_size=len(words), n_positions=512, n_embd=16, n_layer=1, n_head=2, bos_token_id=1,
                   eos_token_id=1)).save_pretrained(tmp_path)
    llm = TransformersLocalLLM(str(tmp_path), device='cpu', max_new_tokens=6, temperature=0.8)
    msgs = [{'role': 'user', 'content': 'ball box'}]
    a = llm.chat(msgs, seed=3)
    assert isinstance(a, str) and a == llm.chat(msgs, seed=3)  # seeded sampling is reproducible
    assert set(a.split()) <= set(words)
    # a random LM answers garbage: the layout generator rejects it with a reason, never crashes
    res = LLMLayoutGenerator(llm, max_attempts=2).generate('scene_00000', ['ball'], 0, 64, 64,
                                                           SynonymIndex([['ball'], ['box']]))
    assert res.layout is None and res.attempts == 2 and res.reason in ('malformed', 'unknown_name')


def _tiny_gligen(path):
    import torch
    from diffusers import AutoencoderKL, DDIMScheduler, StableDiffusionGLIGENPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer
    vocab = {'<|startoftext|>': 0, '<|endoftext|>': 1}
    for c in 'abcdefghijklmnopqrstuvwxyz':
        vocab[c] = len(vocab)
    for c in 'abcdefghijklmnopqrstuvwxyz':
        vocab[c + '</w>'] = len(vocab)
    (path / 'src').mkdir()
    (path / 'src' / 'vocab.json').write_text(json.dumps(vocab))
    (path / 'src' / 'merges.txt').write_text('#version: 0.2\n')
    tok = CLIPTokenizer(str(path / 'src' / 'vocab.json'), str(path / 'src' / 'merges.txt'),
                        model_max_length=16, pad_token='<|endoftext|>')
    torch.manual_seed(0)
    unet = UNet2DConditionModel(block_out_channels=(8, 16), layers_per_block=1, sample_size=8, in_channels=4,
                                out_channels=4, down_block_types=('DownBlock2D', 'CrossAttnDownBlock2D'),
                                up_block_types=('CrossAttnUpBlock2D', 'UpBlock2D'), cross_attention_dim=16,
                                attention_head_dim=4, norm_num_groups=4, attention_type='gated')
    vae = AutoencoderKL(block_out_channels=[8, 16], in_channels=3, out_channels=3, latent_channels=4,
                        down_block_types=['DownEncoderBlock2D'] * 2, up_block_types=['UpDecoderBlock2D'] * 2,
                        norm_num_groups=4, sample_size=16)
    te = CLIPTextModel(
        CLIPTextConfig(bos_token_id=0, eos_token_id=1, pad_token_id=1, hidden_size=16, intermediate_size=32,
                       num_attention_heads=2, num_hidden_layers=1, vocab_size=len(vocab),
                       max_position_embeddings=16, projection_dim=16))
    sched = DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule='scaled_linear',
                          clip_sample=False, set_alpha_to_one=False)
    StableDiffusionGLIGENPipeline(vae=vae, text_encoder=te, tokenizer=tok, unet=unet, scheduler=sched,
                                  safety_checker=None, feature_extractor=None,
                                  requires_safety_checker=False).save_pretrained(str(path / 'gligen'))
    return path / 'gligen'


@pytest.mark.slow
def test_gligen_renderer_tiny_random_pipeline(tmp_path):
    pytest.importorskip('diffusers')  # the `nss` extra; the toy pipeline does not need it
    from projects.dreammask.dreammask.nss.render import GLIGENRenderer
    model_dir = _tiny_gligen(tmp_path)
    r = GLIGENRenderer(str(model_dir), device='cpu', num_inference_steps=2, height=32, width=32,
                       guidance_scale=2.0, prompt_template='{names}', negative_prompt='')
    lay = Layout('scene_00000', 64, 48,
                 [LayoutObject('ball', 5, 5, 20, 20),
                  LayoutObject('box', 30, 20, 30, 28)])
    prompt, phrases, boxes = r.grounding(lay)
    assert prompt == 'ball, box' and phrases == ['ball', 'box']
    assert np.allclose(boxes[1], [30 / 64, 20 / 48, 60 / 64, 48 / 48])
    out = r.render_batch([lay, lay], [1, 2])
    assert [im.size for im in out] == [(32, 32), (32, 32)] and all(im.mode == 'RGB' for im in out)
    a, b = (np.asarray(im, np.int32) for im in out)
    assert np.abs(a - b).mean() > 1.0  # different seeds, different images
    assert np.array_equal(np.asarray(r.render_batch([lay], [1])[0]), a)  # same seed, same image
