"""Training loop that resumes exactly: same data stream, same augmentations, same model random draws.

mmengine's ``IterBasedTrainLoop`` resumes by calling ``next(dataloader)`` once per finished iteration (every
skipped sample decoded again) and restores no random stream, so a resumed run diverges from the
uninterrupted one. This loop skips through ``sampler.fast_forward`` (samples carry their own augmentation
seeds, ``ovseg/datasets/sample_seed.py``), restores every rank's random streams saved in the checkpoint
(``OVSegRunner``) right before the first resumed iteration, and keeps validation and iterator rebuilds from
drawing on the training streams, so a run with validation trains the same weights as one without.
"""
from __future__ import annotations

from mmengine.logging import print_log
from mmengine.runner import IterBasedTrainLoop
from mmengine.runner.loops import _InfiniteDataloaderIterator

from ovseg.registry import LOOPS
from ovseg.utils.random_state import preserved_random_state


def _sampler_of(dataloader):
    batch_sampler = getattr(dataloader, 'batch_sampler', None)
    sampler = getattr(batch_sampler, 'sampler', None) or getattr(dataloader, 'sampler', None)
    return sampler, getattr(batch_sampler, 'batch_size', None) or dataloader.batch_size


@LOOPS.register_module()
class ResumableIterBasedTrainLoop(IterBasedTrainLoop):
    """``IterBasedTrainLoop`` with exact, fast resume.

    The sampler should implement ``fast_forward(num_indices)`` (``ResumableInfiniteSampler``,
    ``MultiSourceSampler``); other samplers fall back to mmengine's iterate-and-discard resume. Random
    streams are restored when the runner provides ``pop_resumed_random_state()`` (``OVSegRunner``).
    """

    def run(self):
        sampler, batch_size = _sampler_of(self.dataloader)
        if self._iter > 0 and hasattr(sampler, 'fast_forward'):
            sampler.fast_forward(self._iter * batch_size)
            # The iterator built in __init__ may have prefetched from the old stream: rebuild it. Its worker
            # seeds are drawn from torch's generator, which the resumed state then overwrites anyway.
            with preserved_random_state():
                self.dataloader_iterator = _InfiniteDataloaderIterator(self.dataloader)
            print_log(f'Resumed data stream at iteration {self._iter} without re-loading samples',
                      logger='current')
        elif self._iter > 0:
            print_log(f'{type(sampler).__name__} has no fast_forward: re-loading {self._iter} batches to resume',
                      logger='current', level=30)
            with preserved_random_state():
                for _ in range(self._iter):
                    next(self.dataloader_iterator)
        return self._run_from(self._iter)

    def _run_from(self, start_iter: int):
        """The body of IterBasedTrainLoop.run without its iterate-to-skip step."""
        self.runner.call_hook('before_train')
        self.runner.call_hook('before_train_epoch')
        self._iter = start_iter
        restore = getattr(self.runner, 'pop_resumed_random_state', None)
        if restore is not None:
            restore()  # after the before_train hooks: exactly where the interrupted run's streams were
        while self._iter < self._max_iters and not self.stop_training:
            self.runner.model.train()
            data_batch = next(self.dataloader_iterator)
            self.run_iter(data_batch)
            self._decide_current_val_interval()
            if (self.runner.val_loop is not None and self._iter >= self.val_begin
                    and (self._iter % self.val_interval == 0 or self._iter == self._max_iters)):
                with preserved_random_state():
                    self.runner.val_loop.run()
        self.runner.call_hook('after_train_epoch')
        self.runner.call_hook('after_train')
        return self.runner.model
