"""One checkpoint, one set of numbers: DreamMask's in-training validation and a later tools/test.py run agree.

A DreamMask model trains on the real vocabulary plus novel synthetic names. FC-CLIP's ensemble weights a class
by α when it was seen in training and by β otherwise, so evaluation must know the training vocabulary. The
checkpoint carries it (``meta['dataset_meta']``); an evaluation config that names a different ``train_vocabulary``
(FC-CLIP's eval configs say COCO) no longer changes the numbers, and a ``seen_vocabulary`` protocol key applies to
validation and test alike. The toy runs with α = 0.4 / β = 0.8 so that the split matters (negative control).
"""
import os
import re
import subprocess
import sys

import pytest
import torch

import ovseg  # noqa: F401  (weights-only loading of mmengine checkpoints)

CFG = 'configs/dreammask/dreammask_fcclip-tiny_toy-scenes.py'
ENSEMBLE = ['model.test_cfg.geometric_ensemble_alpha=0.4', 'model.test_cfg.geometric_ensemble_beta=0.8']
TRAIN = ['train_cfg.max_iters=3', 'train_cfg.val_interval=3', 'default_hooks.checkpoint.interval=3',
         'default_hooks.logger.interval=1']
# ToyScenes classes without the two novel ones (star, water) that only the synthetic scenes carry
REAL_ONLY = ['sky', 'wall', 'grass', 'road', 'circle', 'square', 'triangle', 'cross', 'ring']


def _metrics(log: str, mode: str) -> dict:
    """Metrics of the last ``Iter(val)`` / ``Iter(test)`` summary line of an mmengine log."""
    lines = [ln for ln in log.splitlines() if f'Iter({mode})' in ln and 'panoptic/PQ:' in ln]
    assert lines, log[-3000:]
    return {k: float(v) for k, v in re.findall(r'(\w+/\w+): (-?[\d.]+|nan)', lines[-1])}


def _run(repo_root, args):
    env = dict(os.environ, OMP_NUM_THREADS='1', CUDA_VISIBLE_DEVICES='')
    out = subprocess.run([sys.executable] + args, cwd=repo_root, env=env, capture_output=True, text=True,
                         timeout=600)
    assert out.returncode == 0, (out.stdout + out.stderr)[-4000:]
    return out.stdout + out.stderr


def _test(repo_root, cfg, ckpt, work_dir, extra=()):
    return _metrics(_run(repo_root, ['tools/test.py', cfg, str(ckpt), '--work-dir', str(work_dir),
                                     '--cfg-options'] + ENSEMBLE + list(extra)), 'test')


@pytest.mark.slow
def test_validation_and_test_runs_score_alike(tmp_path, repo_root):
    log = _run(repo_root, ['tools/train.py', CFG, '--work-dir', str(tmp_path / 'train'), '--cfg-options']
               + ENSEMBLE + TRAIN)
    in_training = _metrics(log, 'val')
    ckpt = tmp_path / 'train' / 'iter_3.pth'
    meta = torch.load(ckpt, map_location='cpu', weights_only=True)['meta']
    assert [s[0] for s in meta['dataset_meta']['class_synonyms']][-2:] == ['star', 'water']

    # an eval config stating FC-CLIP's protocol (train vocabulary = the real classes) gives the same numbers:
    # the checkpoint knows it was also trained on the novel synthetic names
    eval_cfg = tmp_path / 'eval.py'
    eval_cfg.write_text(f"_base_ = ['{repo_root / CFG}']\ntrain_vocabulary = {REAL_ONLY!r}\n")
    assert _test(repo_root, str(eval_cfg), ckpt, tmp_path / 'test') == in_training

    # negative control: without the checkpoint's vocabulary the config's (real-only) one would apply and star /
    # water would be scored as unseen (β) -> other numbers. This is what evaluation did before.
    stripped = tmp_path / 'no_meta.pth'
    state = torch.load(ckpt, map_location='cpu', weights_only=True)
    state['meta'].pop('dataset_meta')
    torch.save(state, stripped)
    assert _test(repo_root, str(eval_cfg), stripped, tmp_path / 'test_stripped') != in_training

    # an explicit protocol (seen = real classes only) holds in validation and in test alike
    protocol = ['seen_vocabulary=' + ','.join(REAL_ONLY).replace(',', ';')]
    log = _run(repo_root, ['tools/train.py', CFG, '--work-dir', str(tmp_path / 'train_protocol'), '--cfg-options']
               + ENSEMBLE + TRAIN + protocol)
    validated = _metrics(log, 'val')
    assert validated != in_training
    assert _test(repo_root, CFG, tmp_path / 'train_protocol' / 'iter_3.pth', tmp_path / 'test_protocol',
                 protocol) == validated
