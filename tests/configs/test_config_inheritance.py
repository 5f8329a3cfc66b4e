"""mmengine config inheritance as ovseg configs use it: `_base_`, overrides, `_delete_`."""
import textwrap

from mmengine.config import Config


def _write(path, text):
    path.write_text(textwrap.dedent(text))
    return path


def test_base_merge_override_and_delete(tmp_path):
    _write(tmp_path / 'base.py', """
        model = dict(type='FCCLIP', lambda_sra=0.1, backbone=dict(type='CLIPBackbone', depth=50))
        optim_wrapper = dict(optimizer=dict(type='AdamW', lr=1e-4, weight_decay=0.05),
                             clip_grad=dict(max_norm=0.01))
    """)
    child = _write(tmp_path / 'child.py', """
        _base_ = ['./base.py']
        model = dict(lambda_sra=0.2)
        optim_wrapper = dict(_delete_=True, optimizer=dict(type='SGD', lr=0.01))
    """)
    cfg = Config.fromfile(str(child))
    assert cfg.model.lambda_sra == 0.2
    assert cfg.model.backbone.depth == 50  # merged, not replaced
    assert cfg.optim_wrapper.optimizer.type == 'SGD'
    assert 'clip_grad' not in cfg.optim_wrapper  # _delete_ dropped the inherited keys


def test_runtime_base_is_iteration_based(repo_root):
    cfg = Config.fromfile(str(repo_root / 'configs/_base_/default_runtime.py'))
    assert cfg.default_scope == 'ovseg'
    ckpt = cfg.default_hooks.checkpoint
    assert ckpt.by_epoch is False and ckpt.save_last and ckpt.max_keep_ckpts == 3
    assert {b['type'] for b in cfg.vis_backends} == {'LocalVisBackend', 'TensorboardVisBackend'}
    assert cfg.log_processor.by_epoch is False


def test_schedule_matches_fcclip_recipe(repo_root):
    cfg = Config.fromfile(str(repo_root / 'configs/_base_/schedules/schedule_368750it_adamw.py'))
    assert cfg.train_cfg.max_iters == 368750
    assert cfg.optim_wrapper.optimizer.lr == 1e-4 and cfg.optim_wrapper.optimizer.weight_decay == 0.05
    assert cfg.optim_wrapper.clip_grad.max_norm == 0.01
    assert cfg.param_scheduler[0].milestones == [327778, 355092]
