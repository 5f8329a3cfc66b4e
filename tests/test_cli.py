"""User errors in the tools: one line and a non-zero exit, the traceback only with --debug / OVSEG_DEBUG=1;
--cfg-options items are checked (issue 9, items 13 and "user errors get messages")."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest
from mmengine.config import Config

from ovseg.cli import CfgOptionsAction, merge_cfg_options, run_tool


def _fails(message: str):
    def main(argv):
        raise FileNotFoundError(message)
    return main


def test_error_is_one_line_and_exit_1(capsys):
    with pytest.raises(SystemExit) as exit_info:
        run_tool(_fails('config file not found: x.py'), [])
    assert exit_info.value.code == 1
    err = capsys.readouterr().err
    assert err.count('\n') == 1 and ': error: config file not found: x.py [--debug' in err


def test_debug_flag_and_env_variable_let_the_traceback_through(monkeypatch):
    seen = []

    def main(argv):
        seen.append(argv)
        raise ValueError('boom')

    with pytest.raises(ValueError, match='boom'):
        run_tool(main, ['a', '--debug'])
    assert seen[-1] == ['a']  # the tool's own parser never sees --debug
    monkeypatch.setenv('OVSEG_DEBUG', '1')
    with pytest.raises(ValueError, match='boom'):
        run_tool(main, ['a'])


def test_return_values_become_exit_codes():
    for result, code in ((None, 0), (0, 0), (3, 3), ({'mIoU': 1.0}, 0)):
        with pytest.raises(SystemExit) as exit_info:
            run_tool(lambda argv, r=result: r, [])
        assert exit_info.value.code == code


def test_cfg_options_without_equals_is_a_usage_error(capsys):
    import argparse
    parser = argparse.ArgumentParser(prog='train.py')
    parser.add_argument('--cfg-options', nargs='+', action=CfgOptionsAction)
    assert parser.parse_args(['--cfg-options', 'a.b=1', 'c=[1,2]']).cfg_options == {'a.b': 1, 'c': [1, 2]}
    with pytest.raises(SystemExit) as exit_info:
        parser.parse_args(['--cfg-options', 'train_cfg.max_iters'])
    assert exit_info.value.code == 2
    assert "'train_cfg.max_iters' is not KEY=VALUE" in capsys.readouterr().err


@pytest.mark.parametrize('key, value, message', [
    ('train_cfg.max_iters', 'abc', "expected an integer like the config value 800"),
    ('train_cfg.max_iters', 1.5, 'expected an integer'),
    ('model.test_cfg.instance_on', 3, 'expected a boolean'),
    ('optim_wrapper.optimizer.lr', 'fast', 'expected a number'),
    ('train_dataloader', 4, 'expected a dict'),
])
def test_cfg_options_of_the_wrong_type_are_refused(repo_root, key, value, message):
    cfg = Config.fromfile(str(repo_root / 'configs/fcclip/fcclip_tiny_toy-scenes.py'))
    with pytest.raises(ValueError, match=message):
        merge_cfg_options(cfg, {key: value})


def test_cfg_options_of_the_right_type_merge(repo_root):
    cfg = Config.fromfile(str(repo_root / 'configs/fcclip/fcclip_tiny_toy-scenes.py'))
    merge_cfg_options(cfg, {'train_cfg.max_iters': 10, 'optim_wrapper.optimizer.lr': 1, 'new_key': 'x'})
    assert cfg.train_cfg.max_iters == 10 and cfg.optim_wrapper.optimizer.lr == 1 and cfg.new_key == 'x'


TOOLS = [
    ['tools/train.py', 'missing.py'],
    ['tools/test.py', 'missing.py', 'missing.pth'],
    ['tools/image_demo.py', 'missing.png', '--config', 'missing.py', '--checkpoint', 'missing.pth', '--out', 'o'],
    ['tools/model_converters/fcclip_to_ovseg.py', 'missing.pth', 'out.pth'],
    ['tools/model_converters/merge_lora.py', 'missing.pth', 'out.pth'],
    ['tools/nss/run.py', 'missing.py'],
    ['tools/nss/validate_dataset.py', 'missing_dir'],
    ['tools/analysis/eval_panoptic.py', '--gt-json', 'missing.json', '--pred-json', 'missing.json'],
    ['tools/analysis/eval_semseg.py', '--gt-dir', 'missing', '--pred-dir', 'missing', '--num-classes', '3'],
    ['tools/analysis/compare_per_class.py', 'missing_a.json', 'missing_b.json', '--out', 'o.md'],
    ['tools/dataset_converters/prepare_cityscapes.py', '--root', 'missing'],
    ['tools/dataset_converters/cityscapes_inout.py', '--panoptic-json', 'missing.json', '--out-dir', 'o'],
    ['tools/inout_vocab/ftzs_pseudo_labels.py', 'missing.py', 'missing.pth', '--panoptic-json', 'missing.json',
     '--out', 'o.json'],
    ['tools/analysis/inout_table.py', 'missing_run'],
    ['-m', 'ovseg.datasets.toy_scenes', 'out', '--num-train', '-1'],
]


@pytest.mark.slow
@pytest.mark.parametrize('argv', TOOLS, ids=[a[0].rsplit('/', 1)[-1] if a[0] != '-m' else a[1] for a in TOOLS])
def test_every_tool_reports_a_user_error_in_one_line(tmp_path, repo_root, argv):
    env = dict(os.environ, OMP_NUM_THREADS='1', PYTHONPATH=str(repo_root))
    env.pop('OVSEG_DEBUG', None)
    args = [str(repo_root / a) if a.startswith('tools/') else a for a in argv]
    out = subprocess.run([sys.executable, *args], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 1, out.stderr[-2000:]
    lines = [ln for ln in out.stderr.splitlines() if ': error: ' in ln]
    assert len(lines) == 1 and 'Traceback' not in out.stderr, out.stderr[-2000:]
    assert 'missing' in lines[0] or 'num_train' in lines[0], lines[0]
