"""tools/test.py: evaluates a checkpoint, dumps predictions (--out) and writes overlays (--show-dir)."""
import os
import pickle
import subprocess
import sys

import pytest

CFG = 'configs/fcclip/fcclip_tiny_toy-scenes.py'


@pytest.mark.slow
def test_test_tool_out_and_show_dir(tmp_path, repo_root):
    env = dict(os.environ, OMP_NUM_THREADS='1')
    opts = ['--cfg-options', 'train_cfg.max_iters=2', 'train_cfg.val_interval=100',
            'default_hooks.checkpoint.interval=2']
    subprocess.run([sys.executable, 'tools/train.py', CFG, '--work-dir', str(tmp_path / 'train')] + opts,
                   cwd=repo_root, env=env, check=True, capture_output=True)
    ckpt = tmp_path / 'train' / 'iter_2.pth'
    out = subprocess.run([sys.executable, 'tools/test.py', CFG, str(ckpt), '--work-dir', str(tmp_path / 'test'),
                          '--out', str(tmp_path / 'preds.pkl'), '--show-dir', str(tmp_path / 'vis')],
                         cwd=repo_root, env=env, capture_output=True, text=True)
    assert out.returncode == 0, (out.stdout + out.stderr)[-3000:]
    assert 'panoptic/PQ' in out.stdout + out.stderr
    overlays = sorted((tmp_path / 'vis').glob('*.png'))
    assert len(overlays) == 50  # one per ToyScenes val image
    with open(tmp_path / 'preds.pkl', 'rb') as f:
        preds = pickle.load(f)
    assert len(preds) == 50 and 'pred_panoptic_seg' in preds[0]
