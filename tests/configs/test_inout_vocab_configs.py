"""The in-/out-of-vocabulary configs name real checkpoint paths (no unresolved `{{_base_...}}` placeholders), the
right training JSON per approach, and evaluate on the full val split."""
import pytest
from mmengine.config import Config


def _configs(repo_root):
    return sorted((repo_root / 'configs' / 'inout_vocab').glob('*.py'))


def _checkpoints(model) -> dict:
    out = {}
    if model.get('teacher_checkpoint'):
        out['teacher'] = model.teacher_checkpoint
    for member in ('model_one', 'model_two', 'finetuned', 'zero_shot'):
        if member in model:
            out[member] = model[member].get('checkpoint')
    return out


def test_checkpoint_paths_are_resolved(repo_root):
    for path in _configs(repo_root):
        cfg = Config.fromfile(str(path))
        zs = cfg.get('zero_shot_checkpoint')
        for role, ckpt in _checkpoints(cfg.model).items():
            assert isinstance(ckpt, str) and ckpt.endswith('.pth') and not ckpt.startswith('_'), (path.name, role)
            if role in ('teacher', 'model_one', 'zero_shot'):
                assert ckpt == zs, (path.name, role)  # the zero-shot model's own file, never the student's
            else:
                assert 'lower-bound' in ckpt, (path.name, role)
        if cfg.model.type in ('FCCLIP', 'DistillFCCLIP') and 'pretrain' not in path.name:
            assert cfg.load_from == zs, path.name  # fine-tuning starts from the zero-shot checkpoint


@pytest.mark.parametrize('name,ann_file', [
    ('upper-bound_fcclip-r50_2xb4-1000it_cityscapes-inout-000.py', 'gtFine/inout/cityscapes_panoptic_train_000.json'),
    ('lower-bound_fcclip-r50_2xb4-1000it_cityscapes-inout-008.py', 'gtFine/inout/cityscapes_panoptic_train_008.json'),
    ('kd_fcclip-convnext-large_2xb4-1000it_cityscapes-inout-008.py',
     'gtFine/inout/cityscapes_panoptic_train_008.json'),
    ('ftzs_fcclip-r50_2xb4-1000it_cityscapes-inout-ftzs-008.py',
     'gtFine/inout/cityscapes_panoptic_train_ftzs_008.json'),
    ('fusion-top10_fcclip-r50_2xb4-1000it_cityscapes-inout-ftzs-008.py',
     'gtFine/inout/cityscapes_panoptic_train_ftzs_008.json'),
])
def test_cityscapes_recipe(repo_root, name, ann_file):
    cfg = Config.fromfile(str(repo_root / 'configs' / 'inout_vocab' / name))
    train = cfg.train_dataloader
    assert train.dataset.ann_file == ann_file and train.dataset.unlisted_segments == 'no_target'
    assert train.batch_size == 4 and name.split('_')[2].startswith('2xb4-1000it')  # the study's batch 8
    assert cfg.train_cfg.max_iters == 1000 and cfg.optim_wrapper.optimizer.lr == 1e-4
    val = cfg.val_dataloader.dataset
    assert val.ann_file == 'gtFine/cityscapes_panoptic_val.json' and val.get('unlisted_segments', 'error') == 'error'
    assert [m['type'] for m in cfg.val_evaluator] == ['PanopticMetric']
