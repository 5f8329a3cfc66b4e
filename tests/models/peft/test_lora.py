"""LoRA through peft: the formula, scoping to a submodule, merge (model and state dict), export, base loading."""
import math

import pytest
import torch
from torch import nn

from ovseg.models.peft import (
    LoRA,
    adapt_base_state_dict,
    apply_peft,
    lora_metadata,
    lora_state_dict,
    merge_lora,
    merge_lora_state_dict,
)

peft = pytest.importorskip('peft')


class Block(nn.Module):
    def __init__(self, d=6):
        super().__init__()
        self.q_proj, self.v_proj = nn.Linear(d, d), nn.Linear(d, d)
        self.norm = nn.LayerNorm(d)
        self.conv = nn.Conv2d(d, d, 3, padding=1)
        self.emb = nn.Embedding(11, d)

    def forward(self, x, tokens):
        h = self.norm(self.q_proj(x) + self.v_proj(x))
        img = self.conv(h.transpose(1, 2)[..., None].expand(-1, -1, -1, 3))
        return h + img.mean(-1).transpose(1, 2) + self.emb(tokens)


class Composite(nn.Module):
    """A 'vision' part and an 'llm' part; LoRA goes on the llm only."""

    def __init__(self, d=6):
        super().__init__()
        self.vision = nn.Linear(d, d)
        self.llm = nn.ModuleDict(dict(layer=Block(d), head=nn.Linear(d, 4)))

    def forward(self, x, tokens):
        return self.llm['head'](self.llm['layer'](self.vision(x), tokens))


def _model(seed=0):
    torch.manual_seed(seed)
    return Composite().double()


def _inputs():
    g = torch.Generator().manual_seed(1)
    return torch.randn(2, 5, 6, generator=g, dtype=torch.float64), torch.randint(0, 11, (2, 5), generator=g)


def _randomise_lora(model, seed=3):
    """B starts at zero (LoRA init): give every factor values so the update is visible."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for n, p in model.named_parameters():
            if 'lora_' in n:
                p.copy_(torch.randn(p.shape, generator=g, dtype=p.dtype) * 0.3)


def test_lora_equals_hand_computed_formula_on_a_linear_layer():
    torch.manual_seed(0)
    lin = nn.Sequential(nn.Linear(7, 5)).double()
    w, b = lin[0].weight.detach().clone(), lin[0].bias.detach().clone()
    LoRA(targets=['0'], r=3, alpha=12).apply(lin)
    _randomise_lora(lin)
    a, bb = lin[0].lora_A['default'].weight.detach(), lin[0].lora_B['default'].weight.detach()
    x = torch.randn(4, 7, dtype=torch.float64)
    expected = x @ w.T + b + (12 / 3) * (x @ a.T @ bb.T)
    assert torch.allclose(lin(x), expected, atol=1e-12, rtol=0)
    lin_rs = nn.Sequential(nn.Linear(7, 5)).double()
    LoRA(targets=['0'], r=4, alpha=8, use_rslora=True).apply(lin_rs)  # peft option passed through
    assert lin_rs[0].scaling['default'] == pytest.approx(8 / math.sqrt(4))


def test_lora_on_a_submodule_keeps_other_keys_and_trainability():
    model = _model()
    before = {n: p.requires_grad for n, p in model.named_parameters()}
    base_out = model(*_inputs())
    names = LoRA(targets=r'layer\.(q|v)_proj', r=2, alpha=4, modules_to_save=['head'], module='llm').apply(model)
    assert names == ['llm.layer.q_proj', 'llm.layer.v_proj']
    assert torch.equal(model(*_inputs()), base_out)  # B = 0 at init: the model is unchanged
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == {'vision.weight', 'vision.bias',  # outside the scope: untouched
                         'llm.layer.q_proj.lora_A.default.weight', 'llm.layer.q_proj.lora_B.default.weight',
                         'llm.layer.v_proj.lora_A.default.weight', 'llm.layer.v_proj.lora_B.default.weight',
                         'llm.head.modules_to_save.default.weight', 'llm.head.modules_to_save.default.bias'}
    assert before['llm.layer.norm.weight'] and not model.llm.layer.norm.weight.requires_grad
    keys = set(model.state_dict())
    assert {'vision.weight', 'llm.layer.norm.weight', 'llm.layer.q_proj.base_layer.weight',
            'llm.head.original_module.weight', 'llm.layer.conv.weight'} <= keys
    assert set(lora_state_dict(model)) == {k for k in trainable if k.startswith('llm.')}


def test_targets_as_list_or_regex_select_the_same_layers_and_typos_fail():
    a, b = _model(), _model()
    assert LoRA(['q_proj', 'v_proj'], module='llm').apply(a) == LoRA(r'.*_proj', module='llm').apply(b)
    with pytest.raises(ValueError, match=r"selects no module of ModuleDict"):
        LoRA(r'q_prj', module='llm').apply(_model())
    with pytest.raises(ValueError, match=r"module 'lm' not found in Composite \(top-level children: \['vision', "
                                         r"'llm'\]\)"):
        LoRA('q_proj', module='lm').apply(_model())
    with pytest.raises(ValueError, match='both targets and modules_to_save'):
        LoRA(['q_proj'], modules_to_save=['q_proj']).apply(_model())


def test_merge_gives_the_same_outputs_and_the_original_key_names():
    model = _model()
    original_keys = list(model.state_dict())
    LoRA(targets=['q_proj', 'v_proj', 'conv', 'emb'], r=2, alpha=6, modules_to_save=['head'], module='llm',
         ).apply(model)
    _randomise_lora(model)
    with torch.no_grad():
        model.llm.head.modules_to_save['default'].weight.add_(1.0)  # the trained copy differs from the original
    x = _inputs()
    out = model(*x)
    wrapped_sd = {k: v.clone() for k, v in model.state_dict().items()}
    meta = lora_metadata(model)
    assert meta['layers']['llm.layer.q_proj'] == dict(kind='Linear', adapter='default', scaling=3.0,
                                                      fan_in_fan_out=False, groups=1)
    assert meta['modules_to_save'] == {'llm.head': 'default'}
    merged = merge_lora(model)
    assert list(merged.state_dict()) == original_keys
    assert isinstance(merged.llm.layer.q_proj, nn.Linear) and type(merged.llm.head) is nn.Linear
    assert torch.allclose(merged(*x), out, atol=1e-12, rtol=0)
    from_sd = merge_lora_state_dict(wrapped_sd, meta)  # what tools/model_converters/merge_lora.py does
    assert set(from_sd) == set(original_keys)
    for k, v in merged.state_dict().items():
        assert torch.equal(from_sd[k], v), k


def test_merge_matches_peft_merge_and_unload_on_a_tiny_causal_lm():
    transformers = pytest.importorskip('transformers')
    cfg = transformers.Qwen2Config(vocab_size=64, hidden_size=16, intermediate_size=32, num_hidden_layers=2,
                                   num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=32)
    torch.manual_seed(0)
    ours = transformers.Qwen2ForCausalLM(cfg).eval()
    ref = transformers.Qwen2ForCausalLM(cfg).eval()
    ref.load_state_dict(ours.state_dict())
    linears = r'model\.layers\.\d+\.(self_attn\.(q|k|v|o)_proj|mlp\.(gate|up|down)_proj)'
    LoRA(targets=linears, r=4, alpha=8).apply(ours)  # Sa2VA's choice: every LLM linear but lm_head
    ref = peft.get_peft_model(ref, peft.LoraConfig(r=4, lora_alpha=8, target_modules=linears))
    _randomise_lora(ours)
    _randomise_lora(ref)
    tokens = torch.randint(0, 64, (1, 7))
    assert torch.allclose(ours(tokens).logits, ref(tokens).logits, atol=1e-6)
    merged_ref = ref.merge_and_unload().state_dict()
    merged = merge_lora(ours).state_dict()
    assert merged.keys() == merged_ref.keys()
    assert all(torch.equal(merged[k], merged_ref[k]) for k in merged)


def test_base_checkpoint_loads_into_the_wrapped_model():
    base = _model(seed=5)
    sd = base.state_dict()
    model = _model(seed=9)
    LoRA(targets=['q_proj'], modules_to_save=['head'], module='llm').apply(model)
    adapted, filled = adapt_base_state_dict(sd, model)
    assert filled == 6  # q_proj weight + bias, head weight + bias into original_module and modules_to_save
    missing, unexpected = model.load_state_dict(adapted, strict=False)
    assert unexpected == [] and all('lora_' in k for k in missing)
    assert torch.equal(model(*_inputs()), base(*_inputs()))  # B = 0: the base model's outputs
    again, filled = adapt_base_state_dict(model.state_dict(), model)  # wrapped names pass through
    assert filled == 0 and again.keys() == model.state_dict().keys()


def test_apply_peft_from_config_and_stacked_wrappers_keep_each_others_state():
    model = _model()
    applied = apply_peft(model, [
        dict(type='BottleneckAdapters', targets=['vision'], dim=6, freeze_base=False),
        dict(type='LoRA', targets=['q_proj'], module='llm'),
        dict(type='BottleneckAdapters', targets=['norm'], module='llm'),
    ])
    assert list(applied) == ['0:BottleneckAdapters', '1:LoRA', '2:BottleneckAdapters']
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert {'vision.weight', 'vision.adapters.default.up.weight', 'llm.layer.q_proj.lora_A.default.weight',
            'llm.layer.norm.adapters.default.down.weight'} <= trainable
    assert 'llm.layer.v_proj.weight' not in trainable
    # the third wrapper froze its scope's base but kept the LoRA factors of the second one trainable
    assert model.llm.layer.q_proj.lora_B['default'].weight.requires_grad


def test_modules_to_save_select_by_exact_name_not_by_string_suffix():
    model = nn.ModuleDict(dict(head=nn.Linear(3, 3), mask_head=nn.Linear(3, 3), q=nn.Linear(3, 3)))
    LoRA(['q'], modules_to_save=['head']).apply(model)
    assert type(model['mask_head']) is nn.Linear  # peft's own suffix rule would wrap it too
    assert type(model['head']).__name__ == 'ModulesToSaveWrapper'
    assert {n for n, p in model.named_parameters() if p.requires_grad} == {
        'q.lora_A.default.weight', 'q.lora_B.default.weight', 'head.modules_to_save.default.weight',
        'head.modules_to_save.default.bias'}
