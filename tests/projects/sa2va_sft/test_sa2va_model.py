"""The assembled Sa2VA on the toy config: losses reach exactly the declared trainable groups, inference follows the
[SEG] rule, and an exported release folder loads back identically."""
from pathlib import Path

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope

import projects.sa2va_sft.sa2va_sft as sa2va_pkg
from ovseg.models.peft import configure_trainable
from ovseg.registry import DATASETS, MODELS

CONFIG = Path(__file__).resolve().parents[3] / 'configs/sa2va_sft/sa2va_tiny_toy-referring.py'


@pytest.fixture(scope='module')
def cfg(tmp_path_factory):
    init_default_scope('ovseg')
    cfg = Config.fromfile(str(CONFIG))
    root = str(tmp_path_factory.mktemp('toyref') / 'toy')
    for loader in ('train_dataloader', 'val_dataloader'):
        cfg[loader].dataset.data_root = root
        cfg[loader].dataset.generate = dict(num_train=6, num_val=2, size=(128, 128), seed=0, novel_classes=[])
    return cfg


def _batch(model, cfg, split='train', n=2):
    ds = DATASETS.build(cfg[f'{split}_dataloader'].dataset)
    items = [ds[i] for i in range(n)]
    return model.data_preprocessor(dict(inputs=[b['inputs'] for b in items],
                                        data_samples=[b['data_samples'] for b in items]), split == 'train')


def _model(cfg, seed=0):
    torch.manual_seed(seed)
    return MODELS.build(cfg.model)


def test_two_steps_move_every_trainable_group_and_nothing_else(cfg):
    model = _model(cfg)
    trainable = configure_trainable(model, cfg.peft, cfg.trainable_params, log_table=False)
    before = {k: v.detach().clone() for k, v in model.state_dict().items()}
    params = [p for p in model.parameters() if p.requires_grad]
    rows_params = ('embed_tokens', 'lm_head')  # no weight decay, as the configs' paramwise_cfg
    decay = [p for n, p in model.named_parameters() if p.requires_grad and not any(r in n for r in rows_params)]
    no_decay = [p for n, p in model.named_parameters() if p.requires_grad and any(r in n for r in rows_params)]
    assert len(decay) + len(no_decay) == len(params)
    opt = torch.optim.AdamW([dict(params=decay), dict(params=no_decay, weight_decay=0.0)], lr=1e-2, weight_decay=0.05)
    data = _batch(model, cfg)
    model.train()
    for _ in range(2):
        losses = model(**data, mode='loss')
        assert set(losses) == {'loss_mask', 'loss_dice', 'llm_loss'}
        assert all(torch.isfinite(v) for v in losses.values())
        opt.zero_grad()
        sum(losses.values()).backward()
        opt.step()
    after = model.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    groups = {'lora_A': '.lora_A.', 'lora_B': '.lora_B.', 'mlp1': 'mlp1.', 'text_hidden_fcs': 'text_hidden_fcs.',
              'mask_decoder': 'sam_mask_decoder.'}
    # Sa2VA's loss uses the best of SAM2's 3 masks: the IoU head (used for the choice), the object-score head and
    # the hypernetworks of the 2 other masks get no gradient, so AdamW leaves them as they are (as in Sa2VA)
    no_grad_heads = ('iou_prediction_head', 'pred_obj_score_head', 'output_hypernetworks_mlps')
    for name, part in groups.items():
        keys = [k for k in trainable if part in k and not any(h in k for h in no_grad_heads)]
        assert keys and all(k in changed for k in keys), (name, [k for k in keys if k not in changed][:3])
    assert any('output_hypernetworks_mlps' in k for k in changed)  # the chosen mask's hypernetwork learns
    frozen_changed = [k for k in changed if k not in trainable]
    assert frozen_changed == []  # vision model, SAM2 image/prompt encoders, LLM base weights: bit-identical
    rows = model._old_vocab
    for emb in [k for k in trainable if k.endswith(('embed_tokens.weight', 'lm_head.weight'))]:
        assert torch.equal(before[emb][:rows], after[emb][:rows]), emb  # pre-existing tokens untouched
        assert not torch.equal(before[emb][rows:], after[emb][rows:]), emb  # Sa2VA's added tokens learn


def test_seg_count_must_match_masks(cfg):
    model = _model(cfg)
    data = _batch(model, cfg, n=1)
    ds = data['data_samples'][0]
    ds.gt_masks = torch.cat([ds.gt_masks, ds.gt_masks])  # one mask more than [SEG] answers
    with pytest.raises(ValueError, match=r'\[SEG\] tokens for .* masks'):
        model(**data, mode='loss')


def test_predict_no_seg_gives_empty_mask_and_seg_gives_a_mask(cfg, monkeypatch):
    model = _model(cfg).eval()
    data = _batch(model, cfg, split='val', n=1)
    hidden = model.language_model.config.hidden_size

    def fake(with_seg):
        def generate(lm, embeds, mask, seg_id, stops, max_new_tokens=1):
            states = torch.randn(1, hidden) if with_seg else torch.zeros(0, hidden)
            return sa2va_pkg.SegGeneration(torch.tensor([[seg_id]]), [states])
        return generate

    monkeypatch.setattr('projects.sa2va_sft.sa2va_sft.sa2va.greedy_generate_with_seg', fake(False))
    out = model(**data, mode='predict')[0]
    n = len(out.metainfo['expressions'])
    assert out.pred_masks.shape == (n, *out.metainfo['ori_shape']) and not out.pred_masks.any()
    monkeypatch.setattr('projects.sa2va_sft.sa2va_sft.sa2va.greedy_generate_with_seg', fake(True))
    torch.manual_seed(0)
    out = model(**data, mode='predict')[0]
    assert out.pred_masks.dtype == torch.bool and out.pred_masks.shape[0] == n


def test_export_release_round_trip(cfg, tmp_path):
    model = _model(cfg, seed=3)
    configure_trainable(model, cfg.peft, cfg.trainable_params, log_table=False)
    with torch.no_grad():  # non-zero LoRA B so that merging matters
        for name, p in model.named_parameters():
            if '.lora_B.' in name:
                p.normal_(0, 0.1)
    sa2va_pkg.export_release(model, tmp_path / 'release')
    assert {'config.json', 'model.safetensors'} <= {p.name for p in (tmp_path / 'release').iterdir()}
    loaded = sa2va_pkg.Sa2VA(release=str(tmp_path / 'release'))
    data = _batch(model, cfg, n=1)
    ids = torch.arange(5)[None] + 3
    model.eval()
    loaded.eval()
    with torch.no_grad():
        a = model.language_model(input_ids=ids).logits
        b = loaded.language_model(input_ids=ids).logits
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)  # LoRA merged into the exported base weights
        tiles, sam = model.split_inputs(data['inputs'])
        torch.testing.assert_close(model.visual_tokens(tiles)[0], loaded.visual_tokens(tiles)[0])
        fa = model.grounding_encoder.image_features(model.sam_pixels(sam))['image_embed']
        fb = loaded.grounding_encoder.image_features(loaded.sam_pixels(sam))['image_embed']
        torch.testing.assert_close(fa, fb)
    assert loaded.token_ids == model.token_ids
    # a folder with a tensor removed is refused, naming it
    from safetensors.torch import load_file, save_file
    sd = load_file(str(tmp_path / 'release' / 'model.safetensors'))
    sd.pop('text_hidden_fcs.0.weight')
    save_file(sd, str(tmp_path / 'release' / 'model.safetensors'))
    with pytest.raises(ValueError, match='text_hidden_fcs.0.weight'):
        sa2va_pkg.Sa2VA(release=str(tmp_path / 'release'))


def test_predict_forward_image_and_video(cfg, monkeypatch):
    """The release's chat API: an image gives one mask per [SEG]; a video's [SEG] prompts the first frames and SAM2
    propagates it over every frame; text alone gives text."""
    import numpy as np
    from PIL import Image
    model = _model(cfg).eval()
    hidden = model.language_model.config.hidden_size
    seen = {}

    def generate(lm, embeds, mask, seg_id, stops, max_new_tokens=1):
        seen['tokens'] = embeds.shape[1]
        return sa2va_pkg.SegGeneration(torch.tensor([[seg_id]]), [torch.randn(2, hidden)])

    monkeypatch.setattr('projects.sa2va_sft.sa2va_sft.sa2va.greedy_generate_with_seg', generate)
    rng = np.random.default_rng(0)
    frames = [Image.fromarray(rng.integers(0, 255, (40, 60, 3), dtype=np.uint8)) for _ in range(3)]
    out = model.predict_forward('<image>\nPlease segment the red ball.', image=frames[0])
    assert len(out['prediction_masks']) == 2 and out['prediction_masks'][0].shape == (1, 40, 60)
    out = model.predict_forward('<image>\nPlease segment the red ball.', video=frames, prompt_frames=2)
    assert len(out['prediction_masks']) == 2 and out['prediction_masks'][0].shape == (3, 40, 60)
    assert out['prediction_masks'][0].dtype == bool
    # the LLM saw 2 key frames of one tile each (no tiling for video): 2 image blocks in the prompt
    assert seen['tokens'] > 2 * model.tokens_per_tile
    text_only = model.predict_forward('What is a ring?')
    assert text_only['prediction_masks'] == []
