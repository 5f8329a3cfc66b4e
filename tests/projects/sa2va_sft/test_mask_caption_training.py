"""The mask-caption toy config through tools/dist_train.sh (2 CPU processes, gloo): trains with the EMA teacher,
the EMA shadow and the trainable weights are in the checkpoint, a run stopped after 1 iteration and resumed ends
bit-identical to an uninterrupted 2-iteration run, and tools/test.py scores the re-segmentation."""
import os
import subprocess
import sys

import pytest
import torch

from tests.tools.test_dist_train import run_dist_train

CFG = 'configs/sa2va_sft/sa2va_tiny_toy-mask-caption.py'


def _opts(root):
    gen = ('num_train=3', 'num_val=1')
    sources = ('train_dataloader.dataset.sources.pairs', 'train_dataloader.dataset.sources.referring')
    return ['--cfg-options', 'load_from=None',  # random init: the mechanics, not the part-1 weights
            f'train_dataloader.dataset.sources.pairs.data_root={root}/pairs',
            f'train_dataloader.dataset.sources.referring.data_root={root}/ref',
            f'val_dataloader.dataset.data_root={root}/pairs',
            *[f'{s}.generate.{g}' for s in sources for g in gen],
            *[f'val_dataloader.dataset.generate.{g}' for g in gen],
            'train_dataloader.batch_size=2', 'train_dataloader.sampler.batch_size=2',
            'train_dataloader.sampler.counts.pairs=1', 'train_dataloader.sampler.counts.referring=1',
            'train_dataloader.num_workers=0', 'train_dataloader.persistent_workers=False',
            'val_dataloader.num_workers=0', 'val_dataloader.persistent_workers=False', 'model.max_new_tokens=3',
            'model.max_caption_tokens=4', 'model.accept_iou=0.0',  # accept every caption: all losses act
            'train_cfg.val_interval=100', 'default_hooks.checkpoint.interval=1',
            'default_hooks.checkpoint.max_keep_ckpts=3',
            'default_hooks.logger.interval=1']


@pytest.mark.slow
def test_mask_caption_dist_train_exact_resume_and_test(tmp_path, repo_root):
    root = str(tmp_path / 'data')
    straight = run_dist_train(repo_root, CFG, tmp_path / 'straight', extra=[*_opts(root), 'train_cfg.max_iters=2'])
    log = straight.stdout + straight.stderr
    assert straight.returncode == 0, log[-4000:]
    for key in ('loss_caption', 'loss_iou', 'loss_answer', 'caption_accept', 'caption_iou', 'stage1_s'):
        assert key in log, key
    assert 'TrainableEMAHook:' in log and 'GPU number: 2' in log
    first = run_dist_train(repo_root, CFG, tmp_path / 'resumed', extra=[*_opts(root), 'train_cfg.max_iters=1'])
    assert first.returncode == 0, (first.stdout + first.stderr)[-4000:]
    second = run_dist_train(repo_root, CFG, tmp_path / 'resumed',
                            extra=['--resume', *_opts(root), 'train_cfg.max_iters=2'])
    log = second.stdout + second.stderr
    assert second.returncode == 0, log[-4000:]
    assert 'resumed epoch: 0, iter: 1' in log
    a = torch.load(tmp_path / 'straight' / 'iter_2.pth', map_location='cpu', weights_only=True)
    b = torch.load(tmp_path / 'resumed' / 'iter_2.pth', map_location='cpu', weights_only=True)
    assert a['state_dict'].keys() == b['state_dict'].keys()
    for k, v in a['state_dict'].items():
        assert torch.equal(v, b['state_dict'][k]), k
    shadow_a, shadow_b = a['trainable_ema']['shadow'], b['trainable_ema']['shadow']
    assert shadow_a.keys() == shadow_b.keys() and any('.lora_B.' in k for k in shadow_a)
    for k, v in shadow_a.items():
        assert torch.equal(v, shadow_b[k]), k
    assert a['trainable_ema']['steps'] == b['trainable_ema']['steps'] == 2
    first_ckpt = torch.load(tmp_path / 'resumed' / 'iter_1.pth', map_location='cpu', weights_only=True)
    key = next(k for k in shadow_a if k.startswith('text_hidden_fcs.'))
    assert not torch.equal(first_ckpt['trainable_ema']['shadow'][key], shadow_a[key])  # the teacher moved
    env = dict(os.environ, OMP_NUM_THREADS='1', CUDA_VISIBLE_DEVICES='')
    test = subprocess.run([sys.executable, 'tools/test.py', CFG, str(tmp_path / 'resumed' / 'iter_2.pth'),
                           '--work-dir', str(tmp_path / 'test'), *_opts(root)], cwd=repo_root, env=env,
                          capture_output=True, text=True, timeout=600)
    tlog = test.stdout + test.stderr
    assert test.returncode == 0, tlog[-4000:]
    assert 'refer/cIoU' in tlog


@pytest.mark.slow
def test_mask_caption_fsdp_two_processes_resume(tmp_path, repo_root):
    cfg = 'configs/sa2va_sft/sa2va_tiny_toy-mask-caption-fsdp.py'
    root = str(tmp_path / 'data')
    first = run_dist_train(repo_root, cfg, tmp_path / 'work', extra=[*_opts(root), 'train_cfg.max_iters=1'])
    log = first.stdout + first.stderr
    assert first.returncode == 0, log[-4000:]
    assert 'OVSegFSDPStrategy' in log and 'loss_caption' in log
    second = run_dist_train(repo_root, cfg, tmp_path / 'work',
                            extra=['--resume', *_opts(root), 'train_cfg.max_iters=2'])
    log = second.stdout + second.stderr
    assert second.returncode == 0, log[-4000:]
    assert 'resumed epoch: 0, iter: 1' in log
    a = torch.load(tmp_path / 'work' / 'iter_1.pth', map_location='cpu', weights_only=True)
    b = torch.load(tmp_path / 'work' / 'iter_2.pth', map_location='cpu', weights_only=True)
    assert any('.lora_B.' in k for k in b['state_dict'])  # one full checkpoint, original parameter names
    assert not any('_fsdp_wrapped_module' in k for k in b['state_dict'])
    key = next(k for k in b['state_dict'] if k.startswith('text_hidden_fcs.'))
    assert not torch.equal(a['state_dict'][key], b['state_dict'][key])
