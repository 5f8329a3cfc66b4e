"""Give open-vocabulary models (FC-CLIP and projects built on it) the vocabulary of the data they see.

The class vocabulary is a property of the *dataset* (``metainfo['class_synonyms']`` / ``['is_thing']``), not
of the model config: the same checkpoint trains on COCO and is evaluated on ADE20K, Cityscapes, ... This
hook calls ``model.set_vocabulary(class_synonyms, is_thing, split)``:

* ``before_train``: the train vocabulary from ``runner.train_dataloader.dataset``;
* ``after_load_checkpoint``: the train vocabulary the checkpoint was trained on, from its
  ``meta['dataset_meta']`` (mmengine writes the training dataset's metainfo there; the FC-CLIP converter writes
  COCO panoptic's), so a test-only run scores seen/unseen classes exactly as the in-training validation did;
* ``before_val`` / ``before_test``: the test vocabulary from the val / test dataset (or the ``vocabulary``
  override). A test-only run also needs the *train* vocabulary (FC-CLIP's seen/unseen mask picks α or β
  per class): the checkpoint's, else ``train_vocabulary`` (hook argument or the top-level config key of that
  name: anything :func:`ovseg.vocabulary.resolve_vocabulary` reads, e.g. ``'coco_panoptic'``, a file path,
  a list of synonym lists or ``'a1,a2;b1'``),
  else the train dataloader *config* if the run has one. An evaluation protocol can fix the seen classes
  independently of what the model trained on with ``seen_vocabulary`` (hook argument or config key), e.g.
  COCO's 133 classes for a DreamMask model also trained on novel synthetic names; it applies to in-training
  validation and test runs alike.

Dataset wrappers are unwrapped (``.dataset`` of Repeat/ClassBalanced datasets, ``.datasets`` of
ConcatDataset — all parts must share one vocabulary) and DDP-wrapped models through ``.module``.
"""
from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper

from ovseg.registry import DATASETS, HOOKS
from ovseg.vocabulary import VocabularySpec, resolve_vocabulary


def train_vocabulary_of_checkpoint(checkpoint: Any) -> tuple[list, list | None] | None:
    """``(class_synonyms, is_thing)`` of the dataset a checkpoint was trained on, from ``meta['dataset_meta']``.

    mmengine's Runner writes the training dataset's metainfo there; ``None`` when the file has none.
    """
    meta = checkpoint.get('meta') if isinstance(checkpoint, dict) else None
    dataset_meta = meta.get('dataset_meta') if isinstance(meta, dict) else None
    if not isinstance(dataset_meta, dict) or not dataset_meta.get('class_synonyms'):
        return None
    flags = dataset_meta.get('is_thing')
    return ([list(s) for s in dataset_meta['class_synonyms']], list(flags) if flags is not None else None)


def dataset_metainfo(dataset: Any) -> dict:
    """metainfo of a dataset, looking through Repeat/ClassBalanced/Concat wrappers."""
    seen = 0
    while dataset is not None and seen < 16:
        seen += 1
        meta = getattr(dataset, 'metainfo', None)
        if isinstance(meta, dict) and meta.get('class_synonyms'):
            subs = getattr(dataset, 'datasets', None)
            if subs:
                _check_same_vocabulary(subs)
            return meta
        if getattr(dataset, 'dataset', None) is not None:
            dataset = dataset.dataset
            continue
        subs = getattr(dataset, 'datasets', None)
        if subs:
            metas = [dataset_metainfo(d) for d in subs]
            _check_same_vocabulary(subs, metas)
            return metas[0]
        break
    raise ValueError(f'{type(dataset).__name__} has no metainfo["class_synonyms"]; VocabularyHook needs a '
                     'segmentation dataset (or pass vocabulary=... to the hook)')


def _check_same_vocabulary(datasets: Sequence[Any], metas: list | None = None) -> None:
    metas = metas if metas is not None else [dataset_metainfo(d) for d in datasets]
    first = [list(s) for s in metas[0]['class_synonyms']]
    for i, m in enumerate(metas[1:], 1):
        if [list(s) for s in m['class_synonyms']] != first:
            raise ValueError(
                f'ConcatDataset part {i} has a different class vocabulary from part 0; an '
                'open-vocabulary model trains on one vocabulary (label indices are per vocabulary)')


@HOOKS.register_module()
class VocabularyHook(Hook):
    """Set ``model.set_vocabulary`` from the datasets of the run.

    Args:
        vocabulary: optional override of the **test** vocabulary (name, path, list or ``'a,b;c'``).
        is_thing: thing flags for ``vocabulary`` (default: from the vocabulary file if it has them,
            else all things).
        train_vocabulary: train vocabulary for runs without a train dataloader (test-only) when the checkpoint
            does not carry one; default: the config's top-level ``train_vocabulary`` key.
        seen_vocabulary: classes that count as seen in FC-CLIP's ensemble, overriding the train vocabulary for
            evaluation; default: the config's top-level ``seen_vocabulary`` key (unset: the train vocabulary).
        set_train / set_test: switch either half off.
    """

    priority = 'ABOVE_NORMAL'  # before hooks that may run the model (e.g. visualisation)

    def __init__(self,
                 vocabulary: VocabularySpec | None = None,
                 is_thing: Sequence[bool] | None = None,
                 train_vocabulary: VocabularySpec | None = None,
                 seen_vocabulary: VocabularySpec | None = None,
                 set_train: bool = True,
                 set_test: bool = True) -> None:
        self.vocabulary = vocabulary
        self.is_thing = is_thing
        self.train_vocabulary = train_vocabulary
        self.seen_vocabulary = seen_vocabulary
        self.set_train = set_train
        self.set_test = set_test

    # ------------------------------------------------------------------ helpers
    @staticmethod
    def _model(runner) -> Any:
        model = runner.model
        if is_model_wrapper(model):
            model = model.module
        if not hasattr(model, 'set_vocabulary'):
            raise TypeError(f'{type(model).__name__} has no set_vocabulary(); VocabularyHook is for '
                            'open-vocabulary models such as FCCLIP')
        return model

    def _apply(self, runner, syns, flags, split: str, source: str) -> None:
        model = self._model(runner)
        model.set_vocabulary(syns, flags, split=split)
        print_log(f'VocabularyHook: {split} vocabulary = {len(syns)} classes from {source}',
                  logger='current',
                  level=logging.INFO)

    def _ensure_train_vocabulary(self, runner) -> None:
        model = self._model(runner)
        getter = getattr(model, 'get_vocabulary', None)
        if getter is not None and getter('train') is not None:
            return
        spec = self.train_vocabulary
        if spec is None and getattr(runner, 'cfg', None) is not None:
            spec = runner.cfg.get('train_vocabulary', None)
        if spec is not None:
            syns, flags = resolve_vocabulary(spec)
            self._apply(runner, syns, flags, 'train',
                        f'train_vocabulary={spec if isinstance(spec, str) else "<list>"}')
            return
        cfg_loader = runner.cfg.get('train_dataloader', None) if getattr(runner, 'cfg', None) else None
        if cfg_loader is not None:
            meta = self._metainfo_from_dataset_cfg(cfg_loader.get('dataset', {}))
            if meta is not None:
                self._apply(runner, meta['class_synonyms'], meta.get('is_thing'), 'train',
                            'the train_dataloader config')
                return
        print_log(
            'VocabularyHook: no train vocabulary (set `train_vocabulary` in the config); FC-CLIP will '
            'treat every test class as unseen',
            logger='current',
            level=logging.WARNING)

    @staticmethod
    def _metainfo_from_dataset_cfg(ds_cfg: Any) -> dict | None:
        """Build the train dataset only to read its metainfo (test-only runs without ``train_vocabulary``)."""
        try:
            dataset = DATASETS.build(ds_cfg)
            return dataset_metainfo(dataset)
        except Exception as exc:  # noqa: BLE001 - best effort; a warning follows
            print_log(f'VocabularyHook: could not build the train dataset to read its vocabulary ({exc})',
                      logger='current',
                      level=logging.WARNING)
            return None

    def _apply_seen_vocabulary(self, runner) -> None:
        spec = self.seen_vocabulary
        if spec is None and getattr(runner, 'cfg', None) is not None:
            spec = runner.cfg.get('seen_vocabulary', None)
        if spec is None:
            return
        model = self._model(runner)
        if not hasattr(model, 'set_seen_vocabulary'):
            raise TypeError(f'seen_vocabulary is set but {type(model).__name__} has no set_seen_vocabulary()')
        syns, _ = resolve_vocabulary(spec)
        model.set_seen_vocabulary(syns)
        print_log(f'VocabularyHook: {len(syns)} classes count as seen, from seen_vocabulary='
                  f'{spec if isinstance(spec, str) else "<list>"}', logger='current', level=logging.INFO)

    def _set_test(self, runner, loader_attr: str) -> None:
        if not self.set_test:
            return
        self._ensure_train_vocabulary(runner)
        self._apply_seen_vocabulary(runner)
        if self.vocabulary is not None:
            syns, flags = resolve_vocabulary(self.vocabulary, self.is_thing)
            self._apply(runner, syns, flags, 'test', 'the hook override')
            return
        meta = dataset_metainfo(getattr(runner, loader_attr).dataset)
        self._apply(runner, list(meta['class_synonyms']), meta.get('is_thing'), 'test',
                    f'{loader_attr}.dataset ({type(getattr(runner, loader_attr).dataset).__name__})')

    # ------------------------------------------------------------------ hook points
    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        """Restore the training vocabulary of a loaded checkpoint (``meta['dataset_meta']``), if it has one."""
        vocab = train_vocabulary_of_checkpoint(checkpoint)
        if vocab is None or not self.set_train:
            return
        self._apply(runner, vocab[0], vocab[1], 'train', "the checkpoint's meta['dataset_meta']")
    def before_train(self, runner) -> None:
        if not self.set_train:
            return
        meta = dataset_metainfo(runner.train_dataloader.dataset)
        self._apply(runner, list(meta['class_synonyms']), meta.get('is_thing'), 'train',
                    f'train_dataloader.dataset ({type(runner.train_dataloader.dataset).__name__})')

    def before_val(self, runner) -> None:
        self._set_test(runner, 'val_dataloader')

    def before_test(self, runner) -> None:
        self._set_test(runner, 'test_dataloader')
