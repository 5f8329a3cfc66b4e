"""``OVSegRunner``: mmengine's Runner plus the trainable-set declaration of ovseg configs.

What it adds, in the order a run meets it:

1. ``build_model`` applies the top-level ``peft`` wrappers, then ``trainable_params``, and logs the table of
   trainable parameters — before ``wrap_model``, because DDP fixes the set of trained parameters when it wraps.
2. ``build_optim_wrapper`` defaults to ``TrainableParamsOptimWrapperConstructor`` (only parameters that train
   enter the optimizer) and warns when another constructor put frozen tensors in.
3. ``build_dataloader`` refuses a batch-aware sampler (``MultiSourceSampler``) whose ``batch_size`` differs
   from the dataloader's: the per-batch layout would silently shift.
4. ``load_checkpoint`` loads checkpoints written before LoRA wrapping into the wrapped model (base key names
   are routed to ``X.base_layer.*`` etc.), and ``save_checkpoint`` records the LoRA merge metadata in
   ``meta['lora']`` so ``tools/model_converters/merge_lora.py`` works from the checkpoint alone.

Hardening (faults of mmengine 0.10.7's Runner, fixed here; contracts in docs/design.md):

5. Work-dir lock: ``setup_env`` takes an exclusive lock on the work dir (rank 0; every rank learns the
   outcome), before anything is written there; a second run on the same work dir fails with a message.
6. Collective timeout: the distributed heartbeat starts with the process group, so a timed-out collective
   names the rank that stopped responding (``ovseg/utils/dist_heartbeat.py``).
7. Checkpoints: ``save_checkpoint`` (a collective) stores every rank's random streams in
   ``meta['random_states']`` and writes the file atomically (temporary file + rename);
   ``ResumableIterBasedTrainLoop`` restores the streams before the first resumed iteration.
8. Loading: every load is weights-only (``ovseg/utils/checkpoint_io.py``); a resume checkpoint that does not
   fit the model (shapes, parameters) is an error before training, a ``load_from`` that matches no tensor
   is an error, a partial match a warning; ``--resume`` without a usable checkpoint says so (or fails, when
   ``last_checkpoint`` is broken or a named file is missing); evaluating without loaded weights warns.
"""
from __future__ import annotations

import os
import os.path as osp
import re
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from mmengine.dist import is_main_process
from mmengine.model import is_model_wrapper
from mmengine.runner import Runner
from mmengine.runner.checkpoint import _load_checkpoint, _load_checkpoint_to_model
from torch import nn
from torch.utils.data import DataLoader

from ovseg.models.peft import adapt_base_state_dict, configure_trainable, lora_metadata
from ovseg.registry import RUNNERS
from ovseg.utils.checkpoint_io import CheckpointFormatError, load_checkpoint_file
from ovseg.utils.dist import broadcast_object
from ovseg.utils.dist_heartbeat import start_heartbeat
from ovseg.utils.random_state import gather_random_states, restore_random_state

from .checkpoint_files import check_fit, find_resume_checkpoint
from .optimizers import frozen_params_in_optimizer
from .work_dir_lock import WorkDirBusyError, WorkDirLock

DEFAULT_CONSTRUCTOR = 'TrainableParamsOptimWrapperConstructor'


def _has_peft_layers(model: nn.Module) -> bool:
    return any(type(m).__module__.startswith('peft.') for m in model.modules())


# ------------------------------------------------------------------------------------------------------------
# Shared by OVSegRunner and OVSegFlexibleRunner (ovseg/engine/flexible_runner.py): plain functions for the steps
# that sit at different places in the two runners, ``_OVSegRunnerMixin`` for the methods both override alike.

def prepare_trainable_model(model: nn.Module, cfg: Mapping, logger: Any) -> nn.Module:
    """Apply the config's ``peft`` wrappers, then ``trainable_params``, to a built (not yet wrapped) model."""
    peft = cfg.get('peft')
    if peft and hasattr(model, 'init_weights') and not getattr(model, 'is_init', True):
        # init_cfg-driven initialisation (incl. 'Pretrained' loads) must see the base names and must not
        # re-initialise the adapters' zero up-projections later; the runner's own call then does nothing.
        model.init_weights()
    configure_trainable(model, peft, cfg.get('trainable_params'), logger=logger)
    return model


def with_trainable_constructor(optim_wrapper: Any) -> Any:
    """``optim_wrapper`` with ``constructor=DEFAULT_CONSTRUCTOR`` when it is a config naming none (a copy)."""
    if isinstance(optim_wrapper, dict) and 'optimizer' in optim_wrapper and 'constructor' not in optim_wrapper \
            and isinstance(optim_wrapper['optimizer'], dict):
        optim_wrapper = type(optim_wrapper)(optim_wrapper)
        optim_wrapper['constructor'] = DEFAULT_CONSTRUCTOR
    return optim_wrapper


def warn_frozen_in_optimizer(built: Any, logger: Any) -> None:
    """Warn when a (non-default) constructor put frozen tensors into the optimizer."""
    frozen = frozen_params_in_optimizer(built)
    if frozen:
        logger.warning(f'the optimizer holds {frozen} frozen parameter tensors (requires_grad=False); '
                       f'{DEFAULT_CONSTRUCTOR} leaves them out')


def check_sampler_batch_size(loader: DataLoader) -> DataLoader:
    """Refuse a batch-aware sampler whose ``batch_size`` differs from the dataloader's."""
    batch_sampler = getattr(loader, 'batch_sampler', None)
    sampler = getattr(batch_sampler, 'sampler', None)
    sampler = getattr(loader, 'sampler', None) if sampler is None else sampler
    expected = getattr(sampler, 'batch_size', None)
    actual = loader.batch_size if loader.batch_size is not None else getattr(batch_sampler, 'batch_size', None)
    if expected is not None and actual is not None and expected != actual:
        raise ValueError(f'{type(sampler).__name__} lays out batches of {expected} samples but the dataloader '
                         f'batches {actual}: set the same batch_size in both')
    return loader


def fit_checkpoint_state_dict(filename: str, state_dict: Mapping, model: Any, revise_keys: list, exact: bool,
                              warn: Callable[[str], None], frozen_omitted: bool = False,
                              peft: bool = False) -> tuple[OrderedDict, int]:
    """A checkpoint's state dict renamed for ``model`` and checked against it (``check_fit``) before loading.

    ``revise_keys`` (mmengine's (pattern, replacement) pairs) apply first; with ``peft`` (the model has LoRA
    layers) base-named keys are routed into the wrapped modules. ``model`` needs ``state_dict()`` and
    ``named_parameters()`` only (FSDP passes the layout recorded before sharding). Returns the revised dict,
    which keeps the source's ``_metadata``, and how many keys the LoRA routing filled.
    """
    revised = OrderedDict()
    for key, value in state_dict.items():
        for pattern, replacement in revise_keys:  # mmengine's revise_keys, applied before the routing
            key = re.sub(pattern, replacement, key)
        revised[key] = value
    filled = 0
    if peft:
        revised, filled = adapt_base_state_dict(revised, model)
        revised = OrderedDict(revised)
    check_fit(filename, model, revised, exact=exact, warn=warn, frozen_omitted=frozen_omitted)
    revised._metadata = getattr(state_dict, '_metadata', OrderedDict())
    return revised, filled


@contextmanager
def atomic_checkpoint_target(out_dir: str, filename: str, enabled: bool, writer: bool) -> Iterator[str]:
    """The name to save under: ``.<filename>.<pid>.partial`` beside the final name when ``enabled``; on
    leaving, the ``writer`` process fsyncs it and renames it to ``filename`` (a crash leaves the previous file
    intact), or removes the partial file when the save failed."""
    if not enabled:
        yield filename
        return
    target = f'.{filename}.{os.getpid()}.partial'
    try:
        yield target
        if writer:
            _fsync_and_rename(osp.join(out_dir, target), osp.join(out_dir, filename))
    finally:
        if writer and osp.exists(osp.join(out_dir, target)):
            os.unlink(osp.join(out_dir, target))


def is_local_checkpoint_dir(out_dir: str, file_client_args: dict | None, backend_args: dict | None) -> bool:
    return '://' not in str(out_dir) and file_client_args is None and not backend_args


class _OVSegRunnerMixin:
    """What ``OVSegRunner`` and ``OVSegFlexibleRunner`` add to their mmengine base alike: the work-dir lock
    around train / val / test, the strict ``load_or_resume`` rule, and the random streams of ``resume``.

    The host class provides ``work_dir``, ``distributed``, ``logger``, ``rank``, ``world_size``, ``model``,
    ``resume`` / ``load_checkpoint`` and sets ``_loaded_meta`` (the loaded checkpoint's ``meta``) on a load.
    """

    @property
    def unwrapped_model(self) -> nn.Module:
        return self.model.module if is_model_wrapper(self.model) else self.model

    # ------------------------------------------------------------------------------------- work dir
    def _acquire_work_dir(self) -> None:
        """Lock the work dir on rank 0 and raise the same error on every rank when it is taken.

        Every rank keeps the same ``_work_dir_locked`` flag, so all of them take part in the broadcast.
        """
        lock = getattr(self, '_work_dir_lock', None)
        if lock is None or getattr(self, '_work_dir_locked', False):
            return
        error = None
        if is_main_process():
            try:
                lock.acquire()
            except WorkDirBusyError as exc:
                error = str(exc)
        if self.distributed:
            error = broadcast_object(error)
        if error is not None:
            raise WorkDirBusyError(error)
        self._work_dir_locked = True

    def _release_work_dir(self) -> None:
        lock = getattr(self, '_work_dir_lock', None)
        if lock is not None:
            lock.release()
        self._work_dir_locked = False

    def train(self) -> nn.Module:
        self._acquire_work_dir()
        try:
            return super().train()
        finally:
            self._release_work_dir()

    def val(self) -> dict:
        return self._evaluate(super().val)

    def test(self) -> dict:
        return self._evaluate(super().test)

    def _evaluate(self, run) -> dict:
        self._acquire_work_dir()
        self._evaluating = True
        try:
            return run()
        finally:
            self._evaluating = False
            self._release_work_dir()

    # ------------------------------------------------------------------------------------- loading
    def load_or_resume(self) -> None:
        """mmengine's rule (``resume`` + ``load_from``), strict about what the user asked for."""
        if self._has_loaded:
            return
        resume_from = None
        if self._resume and self._load_from is None:
            resume_from = find_resume_checkpoint(self.work_dir)
            if resume_from is None:
                self.logger.warning(f'--resume: NO CHECKPOINT in {self.work_dir} (no last_checkpoint, no *.pth): '
                                    'TRAINING STARTS FROM SCRATCH. Pass --resume PATH to continue another run.')
            else:
                self.logger.info(f'Auto resumed from the latest checkpoint {resume_from}.')
        elif self._resume:
            resume_from = self._load_from
            if '://' not in str(resume_from) and not osp.isfile(str(resume_from)):
                raise FileNotFoundError(f'--resume {resume_from}: no such checkpoint file')
        if resume_from is not None:
            self.resume(resume_from)
            self._has_loaded = True
        elif self._load_from is not None:
            self.load_checkpoint(self._load_from)
            self._has_loaded = True
        elif getattr(self, '_evaluating', False):
            self.logger.warning('EVALUATING A MODEL WITH NO LOADED CHECKPOINT: load_from is not set, the weights are '
                                'the random / pretrained initialisation only')

    def resume(self, filename: str, resume_optimizer: bool = True, resume_param_scheduler: bool = True,
               map_location: str | Any = 'default') -> None:
        self._resuming = True
        try:
            super().resume(filename, resume_optimizer=resume_optimizer,
                           resume_param_scheduler=resume_param_scheduler, map_location=map_location)
        finally:
            self._resuming = False
        states = (getattr(self, '_loaded_meta', None) or {}).get('random_states')
        if states is None:
            self.logger.warning(f'{filename} carries no random states (written by another runner): the resumed run '
                                'draws fresh random numbers and will not repeat the interrupted run bit for bit')
        elif len(states) != self.world_size:
            self.logger.warning(f'{filename} was written by {len(states)} processes, this run has {self.world_size}: '
                                'random streams are not restored (the resume is not bit-exact)')
        else:
            self._resumed_random_state = states[self.rank]

    def pop_resumed_random_state(self) -> bool:
        """Restore this rank's random streams saved with the resumed checkpoint (once); True when it did."""
        state = getattr(self, '_resumed_random_state', None)
        if state is None:
            return False
        restore_random_state(state)
        self._resumed_random_state = None
        self.logger.info('Restored the random streams (Python, NumPy, torch) of the resumed checkpoint')
        return True


@RUNNERS.register_module()
class OVSegRunner(_OVSegRunnerMixin, Runner):
    """Runner for ovseg configs; ``configs/_base_/default_runtime.py`` selects it with ``runner_type``.

    Reads the optional top-level config keys ``peft`` (list of ``PEFT_WRAPPERS`` configs) and
    ``trainable_params`` (``dict(train=[...], freeze=[...])``), see ``ovseg/models/peft``.
    """

    def build_model(self, model: nn.Module | dict) -> nn.Module:
        return prepare_trainable_model(super().build_model(model), self.cfg, self.logger)

    def build_optim_wrapper(self, optim_wrapper: Any) -> Any:
        built = super().build_optim_wrapper(with_trainable_constructor(optim_wrapper))
        warn_frozen_in_optimizer(built, self.logger)
        return built

    @staticmethod
    def build_dataloader(dataloader: DataLoader | dict, seed: int | None = None,
                         diff_rank_seed: bool = False) -> DataLoader:
        return check_sampler_batch_size(Runner.build_dataloader(dataloader, seed=seed, diff_rank_seed=diff_rank_seed))

    # ------------------------------------------------------------------------------------- environment
    def setup_env(self, env_cfg: dict) -> None:
        super().setup_env(env_cfg)  # initialises the process group when distributed
        if self.distributed:
            start_heartbeat(timeout_s=(env_cfg.get('dist_cfg') or {}).get('timeout'))
        self._work_dir_lock = WorkDirLock(self.work_dir)
        self._acquire_work_dir()

    def load_checkpoint(self, filename: str, map_location: str | Any = 'cpu', strict: bool = False,
                        revise_keys: list = [(r'^module.', '')]) -> dict:  # noqa: B006 (mmengine's signature)
        """mmengine's ``load_checkpoint`` with weights-only loading and a check of how the tensors fit.

        Resuming demands an exact fit (same shapes, same parameters): the optimizer state would otherwise
        crash inside the optimizer or silently attach to the wrong tensors. ``load_from`` needs at least one
        matching tensor and warns about the rest (fine-tuning from another head size is legitimate).
        """
        model = self.unwrapped_model
        if '://' in str(filename):  # URL schemes: mmengine's dispatch, routed to weights-only loaders by ovseg
            checkpoint = _load_checkpoint(filename, map_location=map_location)
        else:
            checkpoint = load_checkpoint_file(filename, map_location=map_location)
        if not isinstance(checkpoint, dict):
            raise CheckpointFormatError(f'{filename}: expected a dict checkpoint, got {type(checkpoint).__name__}')
        self.call_hook('after_load_checkpoint', checkpoint=checkpoint)
        state_dict = checkpoint.get('state_dict', checkpoint)
        meta = checkpoint.get('meta') if isinstance(checkpoint.get('meta'), dict) else {}
        revised, filled = fit_checkpoint_state_dict(
            filename, state_dict, model, revise_keys, exact=getattr(self, '_resuming', False),
            warn=self.logger.warning, frozen_omitted=bool(meta.get('trainable_only')), peft=_has_peft_layers(model))
        _load_checkpoint_to_model(model, dict(state_dict=revised), strict, revise_keys=[])
        self._has_loaded = True
        self._loaded_meta = checkpoint.get('meta') if isinstance(checkpoint.get('meta'), dict) else {}
        self.logger.info(f'Load checkpoint from {filename}'
                         + (f' ({filled} base-named tensors routed into LoRA-wrapped modules)' if filled else ''))
        return checkpoint

    def save_checkpoint(self, out_dir: str, filename: str, file_client_args: dict | None = None,
                        save_optimizer: bool = True, save_param_scheduler: bool = True, meta: dict | None = None,
                        by_epoch: bool = True, backend_args: dict | None = None) -> None:
        """mmengine's ``save_checkpoint`` plus every rank's random streams, written atomically.

        A collective when distributed (the random states are gathered): call it on every rank, as
        ``CheckpointHook`` does.
        """
        meta = dict(meta or {})
        meta['random_states'] = gather_random_states()
        if not is_main_process():
            return
        model = self.unwrapped_model
        if _has_peft_layers(model):
            meta.setdefault('lora', lora_metadata(model))
        local = is_local_checkpoint_dir(out_dir, file_client_args, backend_args)
        # write beside the final name, then rename: a crash leaves the previous file intact
        with atomic_checkpoint_target(out_dir, filename, enabled=local, writer=True) as target:
            super().save_checkpoint(out_dir, target, file_client_args, save_optimizer=save_optimizer,
                                    save_param_scheduler=save_param_scheduler, meta=meta, by_epoch=by_epoch,
                                    backend_args=backend_args)

def _fsync_and_rename(tmp: str, path: str) -> None:
    with open(tmp, 'rb') as f:
        os.fsync(f.fileno())
    os.replace(tmp, path)
    try:
        fd = os.open(osp.dirname(path) or '.', os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError:  # pragma: no cover - platforms without directory fds
        pass
