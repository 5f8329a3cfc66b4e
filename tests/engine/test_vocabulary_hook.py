"""VocabularyHook: train/test vocabularies from the run's datasets, wrappers, overrides, test-only runs."""
from types import SimpleNamespace

import pytest
from mmengine.config import Config
from mmengine.registry import MODEL_WRAPPERS
from torch import nn

from ovseg.engine.hooks import VocabularyHook
from ovseg.vocabulary import parse_vocabulary_string, resolve_vocabulary


class RecordingModel(nn.Module):

    def __init__(self):
        super().__init__()
        self.vocab = {}

    def set_vocabulary(self, class_synonyms, is_thing=None, split='test'):
        self.vocab[split] = ([list(s) for s in class_synonyms], None if is_thing is None else list(is_thing))

    def get_vocabulary(self, split='test'):
        return self.vocab.get(split)

    def set_seen_vocabulary(self, class_synonyms):
        self.vocab['seen'] = None if class_synonyms is None else [list(s) for s in class_synonyms]


@MODEL_WRAPPERS.register_module(force=True)
class FakeDDP(nn.Module):

    def __init__(self, module):
        super().__init__()
        self.module = module


class FakeDataset:

    def __init__(self, syns, things):
        self.metainfo = dict(classes=tuple(s[0] for s in syns), class_synonyms=syns, is_thing=things)

    def __len__(self):
        return 1

    def __getitem__(self, idx):
        return {}


TRAIN = FakeDataset([['person', 'man'], ['sky']], [True, False])
VAL = FakeDataset([['cat'], ['grass', 'lawn'], ['person']], [True, False, True])


def _runner(model, cfg=None, **loaders):
    ns = SimpleNamespace(model=model, cfg=Config(cfg or {}))
    for k, ds in loaders.items():
        setattr(ns, k, SimpleNamespace(dataset=ds))
    return ns


def test_train_and_val_vocabularies_from_datasets_through_ddp():
    model = RecordingModel()
    runner = _runner(FakeDDP(model), train_dataloader=TRAIN, val_dataloader=VAL)
    hook = VocabularyHook()
    hook.before_train(runner)
    assert model.vocab['train'] == ([['person', 'man'], ['sky']], [True, False])
    hook.before_val(runner)
    assert model.vocab['test'] == ([['cat'], ['grass', 'lawn'], ['person']], [True, False, True])
    assert model.vocab['train'][0][0] == ['person', 'man']  # val does not clobber the train vocabulary


def test_dataset_wrappers_are_unwrapped():
    model = RecordingModel()

    class Repeat:  # mmengine RepeatDataset / ClassBalancedDataset style: `.dataset`, no own vocabulary
        metainfo = {}
        dataset = VAL

    wrapped = Repeat()
    runner = _runner(model, test_dataloader=wrapped, cfg=dict(train_vocabulary=[['person']]))
    VocabularyHook().before_test(runner)
    assert model.vocab['test'][0] == [['cat'], ['grass', 'lawn'], ['person']]

    class Concat:  # torch-style ConcatDataset without merged metainfo
        datasets = [VAL, VAL]

    VocabularyHook().before_test(_runner(model, test_dataloader=Concat(), cfg=dict(train_vocabulary='x,y')))
    assert model.vocab['test'][1] == [True, False, True]

    class BadConcat:
        datasets = [VAL, TRAIN]

    with pytest.raises(ValueError, match='different class vocabulary'):
        VocabularyHook().before_test(
            _runner(model, test_dataloader=BadConcat(), cfg=dict(train_vocabulary='x;')))


def test_test_only_run_takes_train_vocabulary_from_config_key():
    model = RecordingModel()
    runner = _runner(model, cfg=dict(train_vocabulary='coco_panoptic'), test_dataloader=VAL)
    VocabularyHook().before_test(runner)
    syns, things = model.vocab['train']
    assert len(syns) == 133 and syns[0][0] == 'person' and sum(things) == 80
    assert model.vocab['test'][0][0] == ['cat']
    # the hook argument wins over the config key, and an existing train vocabulary is kept
    model2 = RecordingModel()
    VocabularyHook(train_vocabulary='a,b;c').before_test(
        _runner(model2, cfg=dict(train_vocabulary='coco_panoptic'), test_dataloader=VAL))
    assert model2.vocab['train'][0] == [['a', 'b'], ['c']]


def test_vocabulary_override_and_string_format():
    model = RecordingModel()
    hook = VocabularyHook(vocabulary='cat,kitty;dog', is_thing=[True, False], train_vocabulary=[['cat']])
    hook.before_val(_runner(model, val_dataloader=VAL))
    assert model.vocab['test'] == ([['cat', 'kitty'], ['dog']], [True, False])
    assert parse_vocabulary_string(' a , b ;c') == [['a', 'b'], ['c']]
    with pytest.raises(ValueError, match='empty'):
        parse_vocabulary_string('a;;b')
    syns, things = resolve_vocabulary('ade20k_150')
    assert len(syns) == 150 and len(things) == 150


def test_hook_with_real_fcclip_vocabulary_errors():
    """set_vocabulary validation surfaces through the hook (empty/duplicate entries)."""
    from ovseg.vocabulary import normalize_vocabulary
    with pytest.raises(ValueError, match='Duplicate'):
        normalize_vocabulary([['cat'], ['Cat']])
    with pytest.raises(ValueError, match='Empty'):
        normalize_vocabulary([])


def test_checkpoint_train_vocabulary_wins_over_config_fallback_and_seen_override():
    """A test-only run of a DreamMask-style checkpoint (trained on real + novel synthetic names) scores
    seen/unseen classes with the checkpoint's training vocabulary, as its in-training validation did; a
    ``seen_vocabulary`` protocol key overrides that for validation and test alike."""
    trained_on = [['person', 'man'], ['sky'], ['star']]
    checkpoint = dict(meta=dict(dataset_meta=dict(class_synonyms=trained_on, is_thing=[True, False, True])))
    model = RecordingModel()
    runner = _runner(model, cfg=dict(train_vocabulary='coco_panoptic'), test_dataloader=VAL)
    hook = VocabularyHook()
    hook.after_load_checkpoint(runner, checkpoint)
    hook.before_test(runner)
    assert model.vocab['train'] == (trained_on, [True, False, True])  # not COCO from the config fallback
    assert 'seen' not in model.vocab
    hook.after_load_checkpoint(runner, dict(meta=dict()))  # a file without dataset_meta changes nothing
    assert model.vocab['train'][0] == trained_on
    # an explicit protocol: only COCO's classes count as seen, in validation (training run) and test
    protocol = _runner(model, cfg=dict(seen_vocabulary='coco_panoptic'), val_dataloader=VAL, test_dataloader=VAL)
    hook.before_val(protocol)
    assert len(model.vocab['seen']) == 133
    model.vocab.pop('seen')
    hook.before_test(protocol)
    assert len(model.vocab['seen']) == 133


def test_hook_override_errors_name_the_problem():
    """A typo in a vocabulary name is an error, not a one-class vocabulary named after the typo."""
    model = RecordingModel()
    with pytest.raises(FileNotFoundError, match="'coco_panoptc' is neither a builtin name"):
        VocabularyHook(train_vocabulary='coco_panoptc').before_val(_runner(model, val_dataloader=VAL))
    with pytest.raises(ValueError, match='is_thing has 1 entries for a vocabulary of 2 classes'):
        VocabularyHook(vocabulary='cat;dog', is_thing=[True], train_vocabulary='cat;').before_val(
            _runner(model, val_dataloader=VAL))
