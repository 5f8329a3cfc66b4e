"""Sa2VA's grounding encoder on Meta's SAM2 (tiny stand-in): [SEG]-prompted decoding, best-IoU selection
(also against Meta's own ``_forward_sam_heads``), Sa2VA's freeze, video propagation and checkpoint errors."""
import numpy as np
import pytest
import torch
from PIL import Image

pytest.importorskip('sam2', reason='Meta sam2 is installed by `make install` (see the Makefile)')

from sam2.modeling.sam2_base import SAM2Base  # noqa: E402

from projects.sa2va_sft.sa2va_sft.grounding_encoder import (  # noqa: E402
    TINY_SAM2,
    SAM2GroundingEncoder,
    build_sam2_model,
)
from projects.sa2va_sft.sa2va_sft.image_tiling import IMAGENET_MEAN, IMAGENET_STD  # noqa: E402

D = 32  # TINY_SAM2 d_model
LOW = 64  # TINY_SAM2 image_size 256 / 4


@pytest.fixture
def encoder() -> SAM2GroundingEncoder:
    torch.manual_seed(0)
    enc = SAM2GroundingEncoder(TINY_SAM2)
    # random init leaves object scores near 0: make every object "appear" so the video path's NO_OBJ_SCORE
    # gating does not blank the masks and the comparisons below see real logits
    enc.sam2_model.sam_mask_decoder.pred_obj_score_head.layers[-1].bias.data.fill_(20.0)
    return enc


def _images(n: int, h: int = 40, w: int = 60, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for _ in range(n)]


def test_builds_meta_sam2_with_release_names(encoder):
    model = encoder.sam2_model
    assert isinstance(model, SAM2Base)
    assert (encoder.d_model, encoder.image_size) == (D, 256)
    keys = set(model.state_dict())
    for prefix in ('image_encoder.trunk.', 'image_encoder.neck.', 'sam_prompt_encoder.', 'sam_mask_decoder.',
                   'memory_attention.', 'memory_encoder.fuser.layers.0.gamma', 'obj_ptr_proj.'):
        assert any(k.startswith(prefix) for k in keys), prefix
    assert {'no_mem_embed', 'maskmem_tpos_enc', 'no_obj_ptr'} <= keys
    # the hydra path (Meta's own yaml, here the small Hiera-T one): same class, Meta's d_model 256 at 1024
    hiera_t = build_sam2_model('sam2_hiera_t.yaml')
    assert type(hiera_t) is type(model) and (hiera_t.hidden_dim, hiera_t.image_size) == (256, 1024)


def test_config_spellings(encoder):
    """'tiny' and an mmengine ConfigDict of TINY_SAM2 (what a config file gives) build the same network."""
    from mmengine.config import ConfigDict

    reference = {k: v.shape for k, v in encoder.sam2_model.state_dict().items()}
    for spelling in ('tiny', ConfigDict(TINY_SAM2)):
        model = build_sam2_model(spelling)
        assert {k: v.shape for k, v in model.state_dict().items()} == reference
    with pytest.raises(ValueError, match="SAM2 config 'sam2_hiera_xl.yaml' is not a config of the sam2 package"):
        build_sam2_model('sam2_hiera_xl.yaml')


def test_preprocess_is_direct_resize_and_imagenet_norm(encoder):
    value = 200
    flat = np.full((30, 70, 3), value, dtype=np.uint8)
    px = encoder.preprocess([flat])
    assert px.shape == (1, 3, 256, 256)
    expected = (value / 255 - torch.tensor(IMAGENET_MEAN)) / torch.tensor(IMAGENET_STD)
    assert torch.allclose(px[0].mean(dim=(1, 2)), expected, atol=1e-6)
    assert torch.allclose(px[0].amax(dim=(1, 2)), px[0].amin(dim=(1, 2)))
    img = _images(1)[0]
    resized = np.array(Image.fromarray(img).resize((256, 256)))  # Sa2VA's DirectResize: PIL default (bicubic)
    manual = (torch.from_numpy(resized).permute(2, 0, 1).float() / 255
              - torch.tensor(IMAGENET_MEAN)[:, None, None]) / torch.tensor(IMAGENET_STD)[:, None, None]
    assert torch.allclose(encoder.preprocess(img)[0], manual, atol=1e-6)
    with pytest.raises(ValueError, match=r'image 1 must be an HxWx3 uint8'):
        encoder.preprocess([img, img.astype(np.float32)])


def test_decode_shapes_and_zero_objects(encoder):
    feats = encoder.image_features(encoder.preprocess(_images(3)))
    assert feats['image_embed'].shape == (3, D, 16, 16)
    assert [f.shape[-1] for f in feats['high_res_features']] == [64, 32]
    out = encoder.decode(feats, [torch.randn(2, D), torch.randn(0, D), torch.randn(1, D)])
    assert [tuple(o.shape) for o in out] == [(2, LOW, LOW), (0, LOW, LOW), (1, LOW, LOW)]
    empty = encoder.decode(feats, [torch.zeros(0, D)] * 3)
    assert [tuple(o.shape) for o in empty] == [(0, LOW, LOW)] * 3
    with pytest.raises(ValueError, match='2 language-embedding tensors for 3 images'):
        encoder.decode(feats, [torch.randn(1, D)] * 2)
    with pytest.raises(ValueError, match=r'language_embeddings\[0\] must be \(n_objects, 32\)'):
        encoder.decode(feats, [torch.randn(1, D + 1)] * 3)


def test_objects_are_independent_of_batching(encoder):
    """Object j of image i gives the same logits whether decoded alone or with other objects and images."""
    imgs, emb = _images(2), torch.randn(3, D)
    both = encoder.decode(encoder.image_features(encoder.preprocess(imgs)), [emb[:2], emb[2:]])
    alone = encoder.decode(encoder.image_features(encoder.preprocess(imgs[1:])), [emb[2:]])
    assert torch.allclose(both[1], alone[0], atol=1e-4)
    assert not torch.allclose(both[0][0], both[0][1], atol=1e-3)  # different [SEG] embeddings, different masks


def test_best_iou_selection_matches_argmax_and_meta_heads(encoder):
    feats = encoder.image_features(encoder.preprocess(_images(1)))
    emb = torch.randn(4, D)
    multi = encoder.decode_multimask(feats, [emb])[0]
    assert multi.masks.shape == (4, 3, LOW, LOW) and multi.ious.shape == (4, 3)
    best = encoder.decode(feats, [emb])[0]
    for j in range(4):
        k = int(torch.argmax(multi.ious[j]))
        assert torch.equal(best[j], multi.masks[j, k])
    # Meta's SAM2Base._forward_sam_heads with the embedding appended to the sparse prompt (Sa2VA's injection):
    # same best mask wherever the object is predicted present, NO_OBJ_SCORE elsewhere (Meta's gating)
    with torch.no_grad():
        embed = feats['image_embed'].expand(4, -1, -1, -1)
        high = [f.expand(4, -1, -1, -1) for f in feats['high_res_features']]
        with encoder._language_prompt(emb[:, None]):
            meta = encoder.sam2_model._forward_sam_heads(backbone_features=embed, high_res_features=high,
                                                         multimask_output=True)
    low_res_masks, object_scores = meta[3][:, 0], meta[6]
    present = object_scores[:, 0] > 0
    assert present.all()  # the fixture's object-score bias
    assert torch.allclose(low_res_masks, best.detach(), atol=1e-5)
    assert torch.allclose(meta[2], multi.ious.detach(), atol=1e-6)


def test_gradient_reaches_language_embedding_and_mask_decoder_only(encoder):
    trainable = encoder.trainable_parameter_names()
    decoder = [f'sam2_model.sam_mask_decoder.{n}' for n, _ in encoder.sam2_model.sam_mask_decoder.named_parameters()]
    assert sorted(trainable) == sorted(decoder)
    emb = torch.randn(2, D, requires_grad=True)
    out = encoder(_images(1), [emb])
    target = torch.zeros_like(out[0])
    target[:, :32] = 1
    torch.nn.functional.binary_cross_entropy_with_logits(out[0], target).backward()
    assert emb.grad is not None and emb.grad.abs().sum() > 0
    for name, p in encoder.named_parameters():
        if name.startswith('sam2_model.sam_mask_decoder.'):
            continue
        assert p.grad is None, name
    decoder_grads = {n: p.grad for n, p in encoder.sam2_model.sam_mask_decoder.named_parameters()}
    assert decoder_grads['output_upscaling.0.weight'].abs().sum() > 0
    assert decoder_grads['transformer.layers.0.self_attn.q_proj.weight'].abs().sum() > 0
    # unfrozen, the image encoder would get gradients: the freeze is what stops them
    encoder.sam2_model.requires_grad_(True)
    encoder(_images(1), [emb])[0].sum().backward()
    assert encoder.sam2_model.image_encoder.trunk.patch_embed.proj.weight.grad.abs().sum() > 0


def _count_decoder_calls(encoder) -> tuple[list[int], object]:
    """Number of sparse prompt tokens of each mask-decoder call: 3 = 2 padding points + the language token."""
    calls: list[int] = []

    def hook(_module, _args, kwargs):
        calls.append(kwargs['sparse_prompt_embeddings'].shape[1])

    handle = encoder.sam2_model.sam_mask_decoder.register_forward_pre_hook(hook, with_kwargs=True)
    return calls, handle


def test_video_prompts_first_frames_and_matches_image_path(encoder):
    frames, emb = _images(3, seed=1), torch.randn(2, D)
    calls, handle = _count_decoder_calls(encoder)
    masks = encoder.propagate_video(frames, emb)
    handle.remove()
    assert masks.shape == (2, 3, 40, 60) and masks.dtype == torch.bool
    # min(5, 3) = 3 prompted frames × 2 objects, each one decoder call with the [SEG] token; nothing propagated
    assert calls == [3] * 6
    assert 0.01 < masks.float().mean() < 0.99
    # a prompted frame has no memory: its mask is the image path's best mask, bilinear to H×W, sigmoid > 0.5
    with torch.no_grad():
        low = encoder.decode(encoder.image_features(encoder.preprocess(frames)), [emb] * 3)
    for t in range(3):
        expected = torch.nn.functional.interpolate(low[t][:, None], size=(40, 60), mode='bilinear',
                                                   align_corners=False)[:, 0].sigmoid() > 0.5
        assert (expected != masks[:, t]).float().mean() < 1e-3, t


def test_video_propagates_beyond_prompt_frames(encoder):
    frames, emb = _images(3, seed=2), torch.randn(1, D)
    calls, handle = _count_decoder_calls(encoder)
    masks = encoder.propagate_video(frames, emb, prompt_frames=1)
    handle.remove()
    assert masks.shape == (1, 3, 40, 60)
    # frame 0 with the [SEG] token, frames 1-2 from SAM2 memory (padding points only)
    assert calls == [3, 2, 2]
    assert encoder.propagate_video(frames, torch.zeros(0, D)).shape == (0, 3, 40, 60)
    with pytest.raises(ValueError, match='one size'):
        encoder.propagate_video(frames + _images(1, h=20), emb)


def test_video_restores_training_mode(encoder):
    encoder.train()
    encoder.propagate_video(_images(1), torch.randn(1, D))
    assert encoder.sam2_model.training


def test_load_sam2_checkpoint_and_errors(encoder, tmp_path):
    torch.manual_seed(1)
    source = SAM2GroundingEncoder(TINY_SAM2)
    good = tmp_path / 'sam2_tiny.pt'
    torch.save({'model': source.sam2_model.state_dict()}, good)
    encoder.load_sam2_checkpoint(good)
    for name, value in source.sam2_model.state_dict().items():
        assert torch.equal(encoder.sam2_model.state_dict()[name], value), name

    state = source.sam2_model.state_dict()
    state['sam_mask_decoder.renamed'] = state.pop('sam_mask_decoder.iou_token.weight')
    bad = tmp_path / 'renamed.pt'
    torch.save({'model': state}, bad)
    with pytest.raises(RuntimeError, match=r'renamed\.pt.*1 missing, 1 unexpected.*iou_token'):
        encoder.load_sam2_checkpoint(bad)
    flat = tmp_path / 'no_model_key.pt'
    torch.save(source.sam2_model.state_dict(), flat)
    with pytest.raises(KeyError, match=r'no_model_key\.pt.*"model"'):
        encoder.load_sam2_checkpoint(flat)
    with pytest.raises(FileNotFoundError, match='missing.pt'):
        encoder.load_sam2_checkpoint(tmp_path / 'missing.pt')
    pickled = tmp_path / 'pickled.pt'
    torch.save({'model': state, 'extra': object}, pickled)  # a global: refused by weights-only loading
    with pytest.raises(RuntimeError, match=r'pickled\.pt could not be read as a weights-only'):
        encoder.load_sam2_checkpoint(pickled)
