"""Knowledge distillation: the loss formula, the query selection, and a teacher loaded from its own file."""
import pytest
import torch
import torch.nn.functional as F
from mmengine.runner.checkpoint import load_checkpoint

from projects.inout_vocab.inout_vocab.distillation import class_logit_distillation
from projects.inout_vocab.inout_vocab.submodel_checkpoint import load_segmentor_checkpoint
from tests.projects.inout_vocab.tiny_models import build_tiny


def test_kl_and_mse_match_their_formulas():
    g = torch.Generator().manual_seed(0)
    s, t = torch.randn(2, 3, 5, generator=g), torch.randn(2, 3, 5, generator=g)
    p_t = F.softmax(t / 2, -1)
    kl = (p_t * (torch.log(p_t) - F.log_softmax(s / 2, -1))).sum(-1) * 4
    assert float(class_logit_distillation(s, t, 'kl', 2.0)) == pytest.approx(float(kl.mean()), rel=1e-5)
    mse = ((s - t) ** 2).mean(-1)
    assert float(class_logit_distillation(s, t, 'mse')) == pytest.approx(float(mse.mean()), rel=1e-6)
    mask = torch.tensor([[True, False, False], [False, False, True]])
    assert float(class_logit_distillation(s, t, 'mse', query_mask=mask)) == pytest.approx(
        float(mse[mask].mean()), rel=1e-6)
    assert float(class_logit_distillation(s, s.clone(), 'kl')) == pytest.approx(0.0, abs=1e-6)
    with pytest.raises(ValueError, match="'kl' or 'mse'"):
        class_logit_distillation(s, t, 'l1')


def test_teacher_keeps_its_own_weights_after_the_student_is_loaded(tiny_checkpoints):
    """The study's bug: the student's weights ended up in the teacher. Here the teacher reads its own file and the
    runner's load_from (mmengine load_checkpoint, non-strict) fills only the student."""
    model = build_tiny(5, type='DistillFCCLIP', teacher_checkpoint=tiny_checkpoints['zero_shot'])
    model.init_weights()  # the runner does this before load_from: must not touch the loaded teacher
    load_checkpoint(model, tiny_checkpoints['finetuned'], map_location='cpu', strict=False, logger='silent')
    zs = torch.load(tiny_checkpoints['zero_shot'], weights_only=True)['state_dict']
    ft = torch.load(tiny_checkpoints['finetuned'], weights_only=True)['state_dict']
    key = 'transformer_decoder.query_feat.weight'
    for k, v in model.teacher.state_dict().items():  # every tensor, incl. those init_weights re-initialises
        torch.testing.assert_close(v, zs[k], msg=k)
    torch.testing.assert_close(model.state_dict()[key], ft[key])
    assert not torch.equal(model.teacher.state_dict()[key], model.state_dict()[key])
    assert not any(p.requires_grad for p in model.teacher.parameters())
    model.train()
    assert not model.teacher.training


def test_distillation_loss_trains_the_student_only(tiny_checkpoints, toy_root):
    from ovseg.datasets.toy_scenes import ToyScenesDataset
    from ovseg.engine.hooks.vocabulary_hook import dataset_metainfo
    model = build_tiny(5, type='DistillFCCLIP', teacher_checkpoint=tiny_checkpoints['zero_shot'],
                       distill=dict(kind='kl', queries='unmatched', loss_weight=2.0))
    ds = ToyScenesDataset(data_root=toy_root, split='train', generate=False,
                          pipeline=[dict(type='LoadImage'), dict(type='LoadPanopticAnnotations'),
                                    dict(type='PackSegInputs', with_instances=True)])
    meta = dataset_metainfo(ds)
    model.set_vocabulary(meta['class_synonyms'], meta['is_thing'], split='train')
    assert model.teacher.get_vocabulary('train') is not None
    data = model.data_preprocessor(dict(inputs=[ds[0]['inputs'], ds[1]['inputs']],
                                        data_samples=[ds[0]['data_samples'], ds[1]['data_samples']]), True)
    model.train()
    losses = model(**data, mode='loss')
    assert losses['loss_distill'] > 0
    sum(v for k, v in losses.items() if 'loss' in k).backward()
    assert all(p.grad is None for p in model.teacher.parameters())
    assert model.transformer_decoder.query_feat.weight.grad is not None


def test_wrong_checkpoint_is_named(tiny_checkpoints, tmp_path):
    model = build_tiny(0)
    bad = tmp_path / 'other_backbone.pth'
    sd = torch.load(tiny_checkpoints['zero_shot'], weights_only=True)['state_dict']
    sd['void_embedding.weight'] = torch.zeros(1, 1024)  # an R50-width void embedding
    del sd['transformer_decoder.query_feat.weight']
    torch.save(dict(state_dict=sd), bad)
    with pytest.raises(ValueError, match=r'other_backbone\.pth: does not fit the teacher .*shape mismatch.*'
                                         r'void_embedding.*missing key.*query_feat'):
        load_segmentor_checkpoint(model, bad, 'teacher')
    with pytest.raises(FileNotFoundError):
        load_segmentor_checkpoint(model, tmp_path / 'absent.pth', 'teacher')


def test_official_fcclip_names_are_converted(tiny_checkpoints, tmp_path):
    """A released detectron2 file (sem_seg_head.* names, under 'model') loads through the FC-CLIP prefix map."""
    sd = torch.load(tiny_checkpoints['zero_shot'], weights_only=True)['state_dict']
    official = {}
    for k, v in sd.items():
        if k.startswith('transformer_decoder.class_head.'):
            official['sem_seg_head.predictor.' + k[len('transformer_decoder.class_head.'):]] = v
        elif k.startswith('transformer_decoder.'):
            official['sem_seg_head.predictor.' + k[len('transformer_decoder.'):]] = v
        elif k.startswith('pixel_decoder.'):
            official['sem_seg_head.' + k] = v
        else:
            official[k] = v
    path = tmp_path / 'fcclip_official.pth'
    torch.save(dict(model=official), path)
    model = build_tiny(3)
    load_segmentor_checkpoint(model, path, 'zero_shot')
    for k, v in model.state_dict().items():
        torch.testing.assert_close(v, sd[k], msg=k)
