"""The Sa2VA toy config through tools/dist_train.sh (2 CPU processes, gloo): trains, checkpoints the LoRA model,
resumes, and tools/test.py evaluates the checkpoint with the referring metric."""
import os
import subprocess
import sys

import pytest
import torch

from tests.tools.test_dist_train import run_dist_train

CFG = 'configs/sa2va_sft/sa2va_tiny_toy-referring.py'


def _opts(root):
    loaders = ('train_dataloader', 'val_dataloader')
    return ['--cfg-options', *[f'{loader}.dataset.data_root={root}' for loader in loaders],
            *[f'{loader}.dataset.generate.{g}' for loader in loaders for g in ('num_train=4', 'num_val=2')],
            'train_dataloader.batch_size=1', 'train_dataloader.num_workers=0',
            'train_dataloader.persistent_workers=False',
            'val_dataloader.num_workers=0', 'val_dataloader.persistent_workers=False', 'model.max_new_tokens=3',
            'train_cfg.val_interval=100', 'default_hooks.checkpoint.interval=1', 'default_hooks.logger.interval=1']


@pytest.mark.slow
def test_toy_dist_train_resume_and_test(tmp_path, repo_root):
    root = str(tmp_path / 'toy')
    out = run_dist_train(repo_root, CFG, tmp_path / 'work', extra=[*_opts(root), 'train_cfg.max_iters=1'])
    log = out.stdout + out.stderr
    assert out.returncode == 0, log[-4000:]
    assert 'GPU number: 2' in log and 'llm_loss' in log and 'loss_dice' in log
    ckpt = torch.load(tmp_path / 'work' / 'iter_1.pth', map_location='cpu', weights_only=True)
    first = ckpt['state_dict']
    assert any('.lora_A.' in k for k in first)
    # TrainableCheckpointHook: frozen weights (ViT, SAM2 image encoder, LLM base) are not stored
    assert ckpt['meta']['trainable_only']['dropped'] > 0
    assert not any(k.startswith(('vision_model.', 'grounding_encoder.sam2_model.image_encoder.')) for k in first)
    out = run_dist_train(repo_root, CFG, tmp_path / 'work', extra=['--resume', *_opts(root), 'train_cfg.max_iters=2'])
    log = out.stdout + out.stderr
    assert out.returncode == 0, log[-4000:]
    assert 'resumed epoch: 0, iter: 1' in log
    second = torch.load(tmp_path / 'work' / 'iter_2.pth', map_location='cpu', weights_only=True)['state_dict']
    key = next(k for k in first if k.startswith('text_hidden_fcs.'))
    assert not torch.equal(first[key], second[key])
    env = dict(os.environ, OMP_NUM_THREADS='1', CUDA_VISIBLE_DEVICES='')
    test = subprocess.run([sys.executable, 'tools/test.py', CFG, str(tmp_path / 'work' / 'iter_2.pth'), '--work-dir',
                           str(tmp_path / 'test'), *_opts(root)], cwd=repo_root, env=env, capture_output=True,
                          text=True, timeout=600)
    tlog = test.stdout + test.stderr
    assert test.returncode == 0, tlog[-4000:]
    assert 'refer/cIoU' in tlog and 'refer/gIoU' in tlog
