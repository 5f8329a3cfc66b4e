"""Training loop that resumes without re-loading every sample it has already trained on."""
from __future__ import annotations

from mmengine.logging import print_log
from mmengine.runner import IterBasedTrainLoop
from mmengine.runner.loops import _InfiniteDataloaderIterator

from ovseg.registry import LOOPS


def _sampler_of(dataloader):
    batch_sampler = getattr(dataloader, 'batch_sampler', None)
    sampler = getattr(batch_sampler, 'sampler', None) or getattr(dataloader, 'sampler', None)
    return sampler, getattr(batch_sampler, 'batch_size', None) or dataloader.batch_size


@LOOPS.register_module()
class ResumableIterBasedTrainLoop(IterBasedTrainLoop):
    """``IterBasedTrainLoop`` whose resume skips data through ``sampler.fast_forward``.

    The sampler must implement ``fast_forward(num_indices)`` (``ResumableInfiniteSampler`` and the
    DreamMask mixing sampler do). Other samplers fall back to mmengine's iterate-and-discard resume.
    """

    def run(self):
        sampler, batch_size = _sampler_of(self.dataloader)
        if self._iter > 0 and hasattr(sampler, 'fast_forward'):
            sampler.fast_forward(self._iter * batch_size)
            # The iterator built in __init__ may have prefetched from the old stream: rebuild it.
            self.dataloader_iterator = _InfiniteDataloaderIterator(self.dataloader)
            print_log(f'Resumed data stream at iteration {self._iter} without re-loading samples',
                      logger='current')
            return self._run_from(self._iter)
        return super().run()

    def _run_from(self, start_iter: int):
        """The body of IterBasedTrainLoop.run without its iterate-to-skip step."""
        self.runner.call_hook('before_train')
        self.runner.call_hook('before_train_epoch')
        self._iter = start_iter
        while self._iter < self._max_iters and not self.stop_training:
            self.runner.model.train()
            data_batch = next(self.dataloader_iterator)
            self.run_iter(data_batch)
            self._decide_current_val_interval()
            if (self.runner.val_loop is not None and self._iter >= self.val_begin
                    and (self._iter % self.val_interval == 0 or self._iter == self._max_iters)):
                self.runner.val_loop.run()
        self.runner.call_hook('after_train_epoch')
        self.runner.call_hook('after_train')
        return self.runner.model
