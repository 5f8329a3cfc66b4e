"""SAM + CLIP mask stage with tiny random-init models; start-up errors for missing weights."""
import numpy as np
import pytest
import torch

from projects.dreammask.dreammask.nss.errors import MissingModelError
from projects.dreammask.dreammask.nss.layout import Layout, LayoutObject
from projects.dreammask.dreammask.nss.masks import (
    SamBoxSegmenter,
    SamClipScorer,
    SelectionConfig,
    build_clip,
    build_sam,
    select_objects,
)
from projects.dreammask.dreammask.nss.masks.clip_score import ClipCropScorer


@pytest.fixture(scope='module')
def tiny_sam():
    return build_sam(model_type='tiny')


@pytest.fixture(scope='module')
def tiny_clip():
    return build_clip('nss-tiny-vit', pretrained=None)


def image(h=96, w=128):
    rng = np.random.default_rng(0)
    return rng.integers(0, 255, (h, w, 3), dtype=np.uint8)


def test_tiny_sam_is_a_real_sam_and_deterministic(tiny_sam):
    from segment_anything.modeling import Sam
    assert isinstance(tiny_sam, Sam) and tiny_sam.image_encoder.img_size == 64
    assert sum(p.numel() for p in tiny_sam.parameters()) < 200_000
    other = build_sam(model_type='tiny')
    assert all(torch.equal(a, b) for a, b in zip(tiny_sam.state_dict().values(), other.state_dict().values()))


def test_sam_segmenter_one_embedding_per_scene_batched_boxes(tiny_sam, monkeypatch):
    seg = SamBoxSegmenter(tiny_sam, box_batch_size=2)
    calls = {'set_image': 0, 'predict_torch': 0}
    for name in calls:
        orig = getattr(seg.predictor, name)

        def wrapped(*a, _orig=orig, _name=name, **k):
            calls[_name] += 1
            return _orig(*a, **k)

        monkeypatch.setattr(seg.predictor, name, wrapped)
    boxes = np.array([[0, 0, 50, 40], [10, 10, 120, 90], [60, 5, 100, 30], [1, 50, 30, 95], [5, 5, 6, 6]],
                     np.float32)
    masks, scores = seg.segment(image(), boxes)
    assert masks.shape == (5, 96, 128) and masks.dtype == bool and scores.shape == (5, )
    assert calls == {'set_image': 1, 'predict_torch': 3}  # 5 boxes in chunks of 2
    # best-of-3: the returned score is the max of the multimask IoU predictions
    seg2 = SamBoxSegmenter(tiny_sam, box_batch_size=64)
    seg2.predictor.set_image(image(), image_format='RGB')
    b = seg2.predictor.transform.apply_boxes_torch(torch.as_tensor(boxes), (96, 128))
    _, iou, _ = seg2.predictor.predict_torch(None, None, boxes=b, multimask_output=True)
    assert np.allclose(scores, iou.max(1).values.numpy(), atol=1e-5)


def test_clip_crop_scorer_cosines_and_text_cache(tiny_clip):
    model, pre, tok = tiny_clip
    sc = ClipCropScorer(model, pre, tok, batch_size=2)
    boxes = np.array([[0, 0, 50, 40], [10, 10, 120, 90], [60, 5, 100, 30]], np.float32)
    s = sc.score(image(), boxes, ['ball', 'box', 'ball'])
    assert s.shape == (3, ) and np.all(np.abs(s) <= 1.0 + 1e-5)
    assert set(sc._text_cache) == {'ball', 'box'}
    # cosine == manual computation
    crop = pre(__import__('PIL').Image.fromarray(image()).crop((0, 0, 50, 40)))[None]
    with torch.no_grad():
        fi = model.encode_image(crop)
        ft = model.encode_text(tok(['ball']))
    ref = torch.nn.functional.cosine_similarity(fi, ft).item()
    assert abs(s[0] - ref) < 1e-4


def test_sam_clip_scorer_end_to_end(tmp_path):
    scorer = SamClipScorer(sam=dict(model_type='tiny'), clip=dict(model='nss-tiny-vit', pretrained=None),
                           box_batch_size=4, clip_batch_size=4)
    lay = Layout('scene_00000', 128, 96,
                 [LayoutObject('ball', 5, 5, 40, 40),
                  LayoutObject('sky', 0, 0, 128, 30)])
    out = scorer.score_scene(image(), lay)
    assert out['masks'].shape == (2, 96, 128)
    assert np.all((out['mask_uncertainty'] >= 0) & (out['mask_uncertainty'] <= 1))
    keep = select_objects(out, SelectionConfig(clip_threshold=-1.0, max_uncertainty=1.0, min_mask_area=0))
    assert [r for _, r in keep] == [None, None]


def test_selection_thresholds_and_reasons():
    masks = np.ones((5, 4, 4), bool)
    masks[4] = False
    scores = dict(masks=masks, clip_scores=np.array([0.3, 0.25, 0.2, 0.9, 0.9]),
                  mask_uncertainty=np.array([0.1, 0.30, 0.1, 0.31, 0.0]))
    got = select_objects(scores, SelectionConfig())  # DreamMask defaults 0.25 / 0.30
    assert got == [(0, None), (1, None), (2, 'low_clip_score'), (3, 'high_mask_uncertainty'),
                   (4, 'empty_mask')]


def test_missing_sam_checkpoint_names_path_and_download(tmp_path):
    p = tmp_path / 'sam_vit_h_4b8939.pth'
    with pytest.raises(MissingModelError) as e:
        build_sam(str(p), 'vit_h')
    assert str(p) in str(e.value) and 'dl.fbaipublicfiles.com/segment_anything/sam_vit_h_4b8939.pth' in str(
        e.value)
    with pytest.raises(MissingModelError):
        SamClipScorer(sam=dict(model_type='vit_b', checkpoint=str(p)),
                      clip=dict(model='nss-tiny-vit', pretrained=None))


def test_sam_checkpoint_is_loaded_weights_only(tmp_path, monkeypatch):
    """The real path: build the registry model and load a state dict with weights_only=True."""
    import segment_anything
    tiny = build_sam(model_type='tiny')
    ck = tmp_path / 'sam.pth'
    torch.save(tiny.state_dict(), ck)
    seen = {}
    real_load = torch.load

    def spy(*a, **k):
        seen.update(k)
        return real_load(*a, **k)

    monkeypatch.setattr(torch, 'load', spy)
    from projects.dreammask.dreammask.nss.masks import sam as sam_mod
    monkeypatch.setitem(segment_anything.sam_model_registry, 'vit_b',
                        lambda checkpoint=None: build_sam(model_type='tiny', tiny_cfg=dict(seed=5)))
    m = sam_mod.build_sam(str(ck), 'vit_b')
    assert seen.get('weights_only') is True
    assert all(torch.equal(a, b) for a, b in zip(m.state_dict().values(), tiny.state_dict().values()))


def test_missing_clip_weights(tmp_path):
    with pytest.raises(MissingModelError, match='ViT-B-32') as e:
        build_clip('ViT-B-32', pretrained=str(tmp_path / 'clip.pt'))
    assert 'clip.pt' in str(e.value)
    with pytest.raises(MissingModelError, match='cache'):
        build_clip('ViT-B-32', pretrained='openai', cache_dir=str(tmp_path / 'no_cache'))


def test_missing_gligen_and_local_llm_dirs(tmp_path):
    from projects.dreammask.dreammask.nss.llm import TransformersLocalLLM
    from projects.dreammask.dreammask.nss.render import GLIGENRenderer
    with pytest.raises(MissingModelError) as e:
        GLIGENRenderer(model_dir=str(tmp_path / 'gligen'))
    assert str(tmp_path / 'gligen') in str(e.value) and 'huggingface-cli download' in str(e.value)
    (tmp_path / 'empty').mkdir()
    with pytest.raises(MissingModelError, match='model_index.json'):
        GLIGENRenderer(model_dir=str(tmp_path / 'empty'))
    with pytest.raises(MissingModelError) as e:
        TransformersLocalLLM(model_path=str(tmp_path / 'llm'))
    assert str(tmp_path / 'llm') in str(e.value)
