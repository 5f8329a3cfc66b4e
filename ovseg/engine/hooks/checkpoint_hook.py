"""mmengine's ``CheckpointHook`` with an order of operations that never loses the last good checkpoint.

mmengine 0.10.7 deletes the oldest kept checkpoint *before* writing the new one, writes the new one in place
and records it in ``last_checkpoint`` as an absolute path: a run killed while writing ``iter_10.pth`` with
``max_keep_ckpts=1`` is left with a truncated ``iter_10.pth``, no ``iter_5.pth`` and a ``last_checkpoint``
naming the truncated file; a copied work dir resumes from the original's files. Here:

1. the new checkpoint is written completely (``OVSegRunner.save_checkpoint`` writes a temporary file and
   renames it; with another runner, mmengine's own write is used),
2. ``last_checkpoint`` is replaced atomically and names the file relative to the work dir,
3. only then are checkpoints beyond ``max_keep_ckpts`` deleted;
4. with ``save_best``, the previous best checkpoint is deleted only after the new best one is written (mmengine
   deletes it first, so a crash during that write would leave no best checkpoint at all).

A run killed during a write leaves a hidden ``.<name>.<pid>.partial`` file; the next run on the work dir
(which holds the work-dir lock, so no other writer exists) removes it in ``before_train``.

Registered as ``CheckpointHook`` in ovseg's registry, so configs with ``default_scope = 'ovseg'`` (all of
them) get it from ``default_hooks.checkpoint = dict(type='CheckpointHook', ...)`` unchanged.
"""
from __future__ import annotations

import os
import os.path as osp

from mmengine.dist import is_main_process
from mmengine.hooks import CheckpointHook as MMEngineCheckpointHook

from ovseg.registry import HOOKS

from ..checkpoint_files import write_last_checkpoint


@HOOKS.register_module(name='CheckpointHook')
class AtomicCheckpointHook(MMEngineCheckpointHook):
    """``CheckpointHook`` (same arguments) that deletes outdated checkpoints only after the new one exists."""

    def before_train(self, runner) -> None:
        super().before_train(runner)
        out_dir = str(self.out_dir)
        if is_main_process() and '://' not in out_dir and osp.isdir(out_dir):
            for name in os.listdir(out_dir):
                if name.startswith('.') and name.endswith('.partial') and '.pth.' in name:
                    os.unlink(osp.join(out_dir, name))
                    runner.logger.info(f'removed {name}: a checkpoint write interrupted by an earlier run')

    def _save_best_checkpoint(self, runner, metrics) -> None:
        """mmengine's best-checkpoint logic, with the previous best file removed after the new one exists."""
        single = getattr(self, 'best_ckpt_path', None)
        many = dict(getattr(self, 'best_ckpt_path_dict', None) or {})
        previous = [p for p in (single, *many.values()) if p]
        # hide the previous paths from mmengine, which deletes them before writing the new best
        if hasattr(self, 'best_ckpt_path'):
            self.best_ckpt_path = None
        if hasattr(self, 'best_ckpt_path_dict'):
            self.best_ckpt_path_dict = {k: None for k in many}
        try:
            super()._save_best_checkpoint(runner, metrics)
        finally:  # indicators that did not improve keep their previous best
            if hasattr(self, 'best_ckpt_path') and self.best_ckpt_path is None:
                self.best_ckpt_path = single
            for key, path in many.items():
                if self.best_ckpt_path_dict.get(key) is None:
                    self.best_ckpt_path_dict[key] = path
        if not is_main_process():
            return
        current = {getattr(self, 'best_ckpt_path', None), *(getattr(self, 'best_ckpt_path_dict', None) or {}).values()}
        for old in previous:
            if old not in current and self.file_backend.isfile(old):
                self.file_backend.remove(old)
                runner.logger.info(f'The previous best checkpoint {old} is removed (after the new one was written)')

    def _save_checkpoint_with_step(self, runner, step, meta):
        outdated: list[int] = []
        if self.max_keep_ckpts > 0 and not (self.keep_ckpt_ids and self.keep_ckpt_ids[-1] == step):
            while len(self.keep_ckpt_ids) >= self.max_keep_ckpts:
                outdated.append(self.keep_ckpt_ids.popleft())
            self.keep_ckpt_ids.append(step)
            runner.message_hub.update_info('keep_ckpt_ids', list(self.keep_ckpt_ids))

        ckpt_filename = self.filename_tmpl.format(step)
        self.last_ckpt = self.file_backend.join_path(self.out_dir, ckpt_filename)
        runner.message_hub.update_info('last_ckpt', self.last_ckpt)
        runner.save_checkpoint(self.out_dir, ckpt_filename, self.file_client_args,
                               save_optimizer=self.save_optimizer, save_param_scheduler=self.save_param_scheduler,
                               meta=meta, by_epoch=self.by_epoch, backend_args=self.backend_args, **self.args)
        if not is_main_process():
            return
        write_last_checkpoint(runner.work_dir, self.last_ckpt)
        for old in outdated:
            path = self.file_backend.join_path(self.out_dir, self.filename_tmpl.format(old))
            if path == self.last_ckpt:
                continue
            if self.file_backend.isfile(path):
                self.file_backend.remove(path)
            elif self.file_backend.isdir(path):  # checkpoints saved by deepspeed are directories
                self.file_backend.rmtree(path)
