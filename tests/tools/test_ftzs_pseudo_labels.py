"""tools/inout_vocab/ftzs_pseudo_labels.py: a real tiny FC-CLIP run on ToyScenes, an oracle predictor for the
relabel path, resume from the JSONL cache, and the errors a user can hit."""
import json
import sys

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.runner import save_checkpoint

from ovseg.datasets import CocoPanopticDataset, generate_toy_scenes
from ovseg.structures.panoptic_format import read_panoptic_png

CONFIG = 'configs/fcclip/fcclip_tiny_toy-scenes.py'


@pytest.fixture(scope='module')
def tool(repo_root):
    sys.path.insert(0, str(repo_root / 'tools' / 'inout_vocab'))
    import ftzs_pseudo_labels
    return ftzs_pseudo_labels


@pytest.fixture(scope='module')
def toy(tmp_path_factory):
    """4 train images (64², every class listed), and a label configuration deleting the commonest thing class."""
    root = generate_toy_scenes(tmp_path_factory.mktemp('toy') / 'toy', num_train=4, num_val=1, size=64, seed=5,
                               novel_classes=[])
    full = json.loads((root / 'panoptic_train.json').read_text())
    things = {c['id'] for c in full['categories'] if c['isthing']}
    counts = {}
    for ann in full['annotations'][:2]:
        for s in ann['segments_info']:
            if s['category_id'] in things:
                counts[s['category_id']] = counts.get(s['category_id'], 0) + 1
    deleted = max(counts, key=counts.get)
    cut = json.loads(json.dumps(full))
    for ann in cut['annotations']:
        ann['segments_info'] = [s for s in ann['segments_info'] if s['category_id'] != deleted]
    (root / 'train_001.json').write_text(json.dumps(cut))
    n_deleted = sum(s['category_id'] == deleted for a in full['annotations'] for s in a['segments_info'])
    return dict(root=root, full=full, cut=cut, deleted=deleted, n_deleted=n_deleted)


@pytest.fixture(scope='module')
def checkpoint(tmp_path_factory, repo_root):
    import ovseg.models  # noqa: F401
    from ovseg.registry import MODELS
    init_default_scope('ovseg')
    torch.manual_seed(0)
    model = MODELS.build(Config.fromfile(str(repo_root / CONFIG)).model)
    path = tmp_path_factory.mktemp('ckpt') / 'tiny.pth'
    save_checkpoint({'state_dict': model.state_dict(), 'meta': {}}, str(path))
    return path


def _argv(toy, out, checkpoint='unused.pth', *extra):
    root = toy['root']
    return [CONFIG, str(checkpoint), '--panoptic-json', str(root / 'train_001.json'), '--out', str(out),
            '--data-root', str(root), '--img-prefix', 'images/train', '--seg-prefix', 'panoptic_train',
            '--device', 'cpu', *extra]


class Oracle:
    """Predicts the GT PNG itself with the reference classes (every deleted segment matches with IoU 1),
    except segments named in ``shrink``, which are predicted on one pixel only (IoU far below 0.5)."""

    def __init__(self, toy, shrink=()):
        self.contiguous = {c['id']: i for i, c in enumerate(sorted(toy['full']['categories'], key=lambda c: c['id']))}
        self.cats = {a['image_id']: {s['id']: s['category_id'] for s in a['segments_info']}
                     for a in toy['full']['annotations']}
        self.shrink = set(shrink)
        self.calls = []

    def __call__(self, info):
        self.calls.append(info['img_id'])
        pan = read_panoptic_png(info['seg_map_path']).astype(np.int64)
        for sid in self.shrink:
            ys, xs = np.nonzero(pan == sid)
            if len(ys):
                pan[pan == sid] = 0
                pan[ys[0], xs[0]] = sid
        segs = [dict(id=int(i), category_id=self.contiguous[self.cats[info['img_id']][int(i)]], isthing=True)
                for i in np.unique(pan) if i]
        return pan, segs


def _check_output(toy, out):
    doc = json.loads(out.read_text())
    assert doc['categories'] == toy['cut']['categories'] and doc['images'] == toy['cut']['images']
    before = {a['image_id']: {s['id'] for s in a['segments_info']} for a in toy['cut']['annotations']}
    appended = []
    for ann in doc['annotations']:
        png = set(np.unique(read_panoptic_png(toy['root'] / 'panoptic_train' / ann['file_name'])).tolist())
        for s in ann['segments_info']:
            if s.get('pseudo_label'):
                assert s['id'] in png and s['id'] not in before[ann['image_id']] and s['iou'] > 0.5
                appended.append((ann['image_id'], s))
            else:
                assert s['id'] in before[ann['image_id']]
    # valid for the dataset with the default (strict) rule on the images where nothing was dropped
    ds = CocoPanopticDataset(ann_file=str(out), data_root=str(toy['root']),
                             data_prefix=dict(img='images/train', seg='panoptic_train'), unlisted_segments='no_target')
    assert len(ds) == len(toy['cut']['annotations'])
    return appended


def test_tiny_fcclip_run_and_resume(tool, toy, checkpoint, tmp_path, capsys):
    out = tmp_path / 'ftzs.json'
    summary = tool.main(_argv(toy, out, checkpoint, '--limit', '2', '--log-interval', '1'))
    assert summary['images'] == 2 and summary['images_predicted'] == 2 and summary['images_from_cache'] == 0
    assert summary['deleted_segments_seen'] == summary['relabelled'] + summary['dropped'] > 0
    first_two = sum(s['category_id'] == toy['deleted'] for a in toy['full']['annotations'][:2]
                    for s in a['segments_info'])
    assert summary['deleted_segments_seen'] == first_two
    assert json.loads((tmp_path / 'ftzs.summary.json').read_text()) == json.loads(json.dumps(summary))
    appended = _check_output(toy, out)
    assert len(appended) == summary['relabelled']
    cache = tmp_path / 'ftzs.json.partial.jsonl'
    assert len(cache.read_text().splitlines()) == 1 + 2  # header + one line per image
    assert '[2/2]' in capsys.readouterr().out
    # resume: the two cached images are not predicted again, only the third
    oracle = Oracle(toy)
    summary = tool.main(_argv(toy, out, checkpoint, '--limit', '3'), predictor=oracle)
    assert summary['images_from_cache'] == 2 and summary['images_predicted'] == 1
    assert oracle.calls == [toy['full']['annotations'][2]['image_id']]
    assert len(cache.read_text().splitlines()) == 1 + 3


def test_oracle_relabels_every_deleted_segment(tool, toy, tmp_path):
    out = tmp_path / 'o.json'
    summary = tool.main(_argv(toy, out, 'unused.pth', '--reference-json', str(toy['root'] / 'panoptic_train.json')),
                        predictor=Oracle(toy))
    assert summary['images'] == 4 and summary['deleted_segments_seen'] == toy['n_deleted']
    assert summary['relabelled'] == toy['n_deleted'] and summary['dropped'] == 0
    assert summary['reference_compared'] == summary['reference_same_class'] == toy['n_deleted']
    assert summary['pseudo_label_precision'] == 1.0
    appended = _check_output(toy, out)
    assert all(s['category_id'] == toy['deleted'] and s['iou'] == 1.0 for _, s in appended)
    full = {(a['image_id'], s['id']): s for a in toy['full']['annotations'] for s in a['segments_info']}
    for image_id, s in appended:  # area and bbox as the generator wrote them
        assert (s['area'], s['bbox']) == (full[image_id, s['id']]['area'], full[image_id, s['id']]['bbox'])
    assert not (tmp_path / 'o.json.partial.jsonl').exists()  # a complete run removes its cache


def test_per_image_function_drops_a_poor_match(tool, toy):
    ann = toy['full']['annotations'][0]
    victim = next(s['id'] for s in ann['segments_info'] if s['category_id'] == toy['deleted'])
    ds = CocoPanopticDataset(ann_file=str(toy['root'] / 'train_001.json'), data_root=str(toy['root']),
                             data_prefix=dict(img='images/train', seg='panoptic_train'), unlisted_segments='no_target')
    cat_ids = ds.metainfo['category_ids']
    item = tool.pseudo_label_image(ds.get_data_info(0), Oracle(toy, shrink=[victim]), cat_ids, 0.5)
    recs = {r['id']: r for r in item['records']}
    assert set(recs) == {s['id'] for s in ann['segments_info'] if s['category_id'] == toy['deleted']}
    area = next(s['area'] for s in ann['segments_info'] if s['id'] == victim)
    assert recs[victim]['category_id'] is None and recs[victim]['iou'] == pytest.approx(1 / area)
    assert all(r['category_id'] == toy['deleted'] for i, r in recs.items() if i != victim)


def test_cache_torn_last_line_and_mismatch(tool, toy, tmp_path, capsys):
    out = tmp_path / 'c.json'
    cache = tmp_path / 'c.json.partial.jsonl'
    tool.main(_argv(toy, out, 'unused.pth', '--limit', '1'), predictor=Oracle(toy))
    with open(cache, 'a') as f:
        f.write('{"image_id": 1, "reco')  # killed while writing
    oracle = Oracle(toy)
    summary = tool.main(_argv(toy, out, 'unused.pth', '--limit', '2'), predictor=oracle)
    assert summary['cache_lines_dropped'] == 1 and summary['images_from_cache'] == 1
    assert oracle.calls == [toy['full']['annotations'][1]['image_id']]
    assert 'half-written last line' in capsys.readouterr().out
    assert [json.loads(line)['image_id'] for line in cache.read_text().splitlines()[1:]] == [0, 1]
    with pytest.raises(ValueError, match='iou_threshold'):
        tool.main(_argv(toy, out, 'unused.pth', '--limit', '2', '--iou-threshold', '0.6'), predictor=Oracle(toy))
    lines = cache.read_text().splitlines()
    cache.write_text('\n'.join([lines[0], 'garbage', lines[1]]) + '\n')
    with pytest.raises(ValueError, match='line 2 is not valid JSON'):
        tool.main(_argv(toy, out, 'unused.pth', '--limit', '2'), predictor=Oracle(toy))
    cache.write_text('{"ftzs_cache": 1, "panoptic_js')  # killed while writing the header itself
    summary = tool.main(_argv(toy, out, 'unused.pth', '--limit', '1'), predictor=Oracle(toy))
    assert summary['cache_lines_dropped'] == 1 and summary['images_predicted'] == 1
    assert json.loads(cache.read_text().splitlines()[0])['ftzs_cache'] == 1


def test_user_errors(tool, toy, tmp_path):
    def wrong_size(info):
        return np.zeros((10, 12), np.int64), []

    with pytest.raises(ValueError, match=r"image 0: prediction is 12x10 .* is 64x64"):
        tool.main(_argv(toy, tmp_path / 'w.json', 'unused.pth', '--limit', '1'), predictor=wrong_size)
    argv = _argv(toy, tmp_path / 'x.json')
    argv.remove('--img-prefix')
    argv.remove('images/train')
    with pytest.raises(ValueError, match='pass --img-prefix'):
        tool.main(argv, predictor=Oracle(toy))
    with pytest.raises(ValueError, match='overwrite'):
        tool.main(_argv(toy, toy['root'] / 'train_001.json'), predictor=Oracle(toy))
    with pytest.raises(SystemExit):
        tool.parse_args(_argv(toy, tmp_path / 'y.json', 'unused.pth', '--iou-threshold', '0.3'))
    with pytest.raises(FileNotFoundError, match='checkpoint not found'):
        tool.main(_argv(toy, tmp_path / 'z.json', tmp_path / 'missing.pth', '--limit', '1'))


def test_cityscapes_defaults_come_from_the_zero_shot_config(tool, repo_root):
    """The documented Cityscapes command needs no prefixes: the inout config's train dataset supplies them."""
    cfg = Config.fromfile(str(repo_root / 'configs/inout_vocab/zero-shot_fcclip-r50_eval_cityscapes-inout.py'))
    args = tool.parse_args(['c.py', 'k.pth', '--panoptic-json', 'train_008.json', '--out', 'ftzs.json'])
    kw = tool.dataset_kwargs(cfg, args)
    assert kw['data_root'] == 'data/cityscapes/' and kw['img_subdir_sep'] == '_' and kw['vocabulary'] == 'cityscapes'
    assert kw['data_prefix'] == dict(img='leftImg8bit/train/', seg='gtFine/cityscapes_panoptic_train/')
    assert kw['unlisted_segments'] == 'no_target' and kw['ann_file'].endswith('train_008.json')
    # the evaluation config has no train dataloader: root/separator/vocabulary from its test dataset, prefixes given
    cfg = Config.fromfile(str(repo_root / 'configs/fcclip/fcclip_r50_eval_cityscapes.py'))
    with pytest.raises(ValueError, match='--img-prefix and --seg-prefix'):
        tool.dataset_kwargs(cfg, args)
    args.img_prefix, args.seg_prefix = 'leftImg8bit/train/', 'gtFine/cityscapes_panoptic_train/'
    kw = tool.dataset_kwargs(cfg, args)
    assert (kw['data_root'], kw['img_subdir_sep'], kw['vocabulary']) == ('data/cityscapes/', '_', 'cityscapes')
    init_default_scope('ovseg')
    names = [type(t).__name__ for t in tool.test_pipeline(cfg).transforms]
    assert names == ['LoadImage', 'ResizeShortestEdge', 'PackSegInputs']  # GT loading dropped
