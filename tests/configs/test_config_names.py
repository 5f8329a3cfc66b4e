"""Config names follow `{algo}_{backbone}_{gpus}xb{batch}-{schedule}_{data}.py` (evaluation configs:
`{algo}_{backbone}_eval_{data}.py`, CPU toys: `{algo}_{backbone}_{toy data}.py`), and every one of them composes."""
import re

import pytest
from mmengine.config import Config

TOKEN = r'[a-z0-9][a-z0-9.\-]*'
TRAIN = re.compile(rf'^{TOKEN}_{TOKEN}_\d+xb\d+-\d+(it|e)_{TOKEN}\.py$')
EVAL = re.compile(rf'^{TOKEN}_{TOKEN}_eval_{TOKEN}(_{TOKEN})?\.py$')
TOY = re.compile(rf'^{TOKEN}_{TOKEN}-?tiny_toy-{TOKEN}\.py$|^{TOKEN}_{TOKEN}_toy-{TOKEN}\.py$')


def _configs(repo_root):
    groups = ('fcclip', 'dreammask', 'inout_vocab', 'sa2va_sft', 'seem_ft')
    return sorted(p for d in groups for p in (repo_root / 'configs' / d).glob('*.py'))


def test_names_follow_the_convention(repo_root):
    bad = [p.name for p in _configs(repo_root)
           if not (TRAIN.match(p.name) or EVAL.match(p.name) or TOY.match(p.name))]
    assert bad == []
    assert len(_configs(repo_root)) >= 70


@pytest.mark.parametrize('group', ['fcclip', 'dreammask', 'inout_vocab', 'sa2va_sft', 'seem_ft'])
def test_every_config_composes(repo_root, group):
    for path in sorted((repo_root / 'configs' / group).glob('*.py')):
        cfg = Config.fromfile(str(path))
        assert cfg.model.type in ('FCCLIP', 'DreamMaskFCCLIP', 'DistillFCCLIP', 'TwoModelFusionSegmentor',
                                  'NaiveMergeSegmentor', 'Sa2VA', 'MaskCaptionSa2VA', 'SEEM'), path.name
