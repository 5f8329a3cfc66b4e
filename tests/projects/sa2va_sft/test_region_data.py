"""Region-pair data (SA-V masklets, npz frame pairs, the SA-V → npz converter, ToyScenes frame pairs): exact frames and
masks from fixtures in the real formats, the pair rules, bad records, seeded determinism and the result contract."""
import importlib.util
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
from mmengine.registry import init_default_scope

from ovseg.datasets.referring import ReferringRecordError
from ovseg.datasets.sample_seed import SeededIndex
from ovseg.datasets.samplers.multi_source import MultiSourceDataset
from ovseg.registry import DATASETS, TRANSFORMS
from projects.sa2va_sft.sa2va_sft.region_data import (
    REGION_PAIR_KEYS,
    SAVFramePairNpzDataset,
    SAVMaskletDataset,
    ToyFramePairDataset,
    choose_frame_pair,
    draw_toy_pair_scene,
    ensure_toy_frame_pairs,
    frame_pair_candidates,
    generate_toy_frame_pairs,
    read_frame_pair_npz,
    read_video_frames,
    sample_toy_pair_scene,
    write_frame_pair_npz,
)
from tests.projects.sa2va_sft.region_fixtures import STRIDE, decoded_frames, raw_frame, write_sav

PIPE = [dict(type='LoadRegionPair')]
CONVERTER = Path(__file__).resolve().parents[3] / 'tools/dataset_converters/sav_to_frame_pairs.py'
TOY = dict(num_train=4, num_val=2, size=(48, 48), seed=1, min_area=20)


@pytest.fixture(autouse=True)
def _scope():
    init_default_scope('ovseg')


@pytest.fixture(scope='module')
def sav(tmp_path_factory):
    root = tmp_path_factory.mktemp('sav')
    info = write_sav(root)
    info['root'] = root
    info['decoded'] = decoded_frames(root / 'sav_000001.mp4')
    return info


def _seeded(i, s):
    return SeededIndex(i, (s, s + 1, s + 2))


def _check_contract(r):
    for k in REGION_PAIR_KEYS:
        assert k in r, k
    assert r['img'].dtype == np.uint8 and r['img'].ndim == 3 and r['img2'].dtype == np.uint8
    assert r['region_mask'].dtype == bool and r['region_mask'].shape == r['img'].shape[:2] and r['region_mask'].any()
    assert r['region_mask2'].dtype == bool and r['region_mask2'].shape == r['img2'].shape[:2]
    assert r['region_mask2'].any()
    h, w = r['img'].shape[:2]
    assert r['ori_shape'] == r['img_shape'] == (h, w) and (r['height'], r['width']) == (h, w)


# ---------------------------------------------------------------------------------------------------- SA-V
def test_sav_index_skips_and_counts_bad_masklets_or_names_them(sav):
    ds = SAVMaskletDataset(data_root=str(sav['root']), on_bad_record='skip', pipeline=PIPE)
    assert len(ds) == 2
    assert [ds.get_data_info(i)['valid_frames'] for i in range(2)] == [[0, 1, 2, 3, 4, 5], [1, 4]]
    assert ds.skipped == {'empty mask': 1, 'too few valid frames': 1}
    with pytest.raises(ReferringRecordError, match=r'sav_000001_manual\.json: masklet 2: the object is empty'):
        SAVMaskletDataset(data_root=str(sav['root']))
    same = SAVMaskletDataset(data_root=str(sav['root']), on_bad_record='skip', allow_same_frame=True)
    assert len(same) == 3 and same.skipped == {'empty mask': 1}
    gap = SAVMaskletDataset(data_root=str(sav['root']), on_bad_record='skip', max_frame_gap=2)
    assert len(gap) == 1 and gap.skipped['no frame pair within max_frame_gap'] == 1


def test_sav_pairs_are_the_exact_frames_and_masks(sav):
    ds = SAVMaskletDataset(data_root=str(sav['root']), on_bad_record='skip', pipeline=PIPE)
    mp4 = str(sav['root'] / 'sav_000001.mp4')
    seen = set()
    for s in range(30):
        for i in range(2):
            r = ds[_seeded(i, s)]
            _check_contract(r)
            obj = r['object_index']
            fa, fb = r['frame_indices']
            assert fa != fb and fa % STRIDE == 0 and fb % STRIDE == 0
            assert r['img_path'] == f'{mp4}#frame={fa}' and r['img2_path'] == f'{mp4}#frame={fb}'
            for img, mask, f in ((r['img'], r['region_mask'], fa), (r['img2'], r['region_mask2'], fb)):
                assert np.array_equal(img, sav['decoded'][f])  # the seek lands on the frame a full decode gives
                errs = [np.abs(img.astype(int) - raw_frame(j).astype(int)).mean() for j in range(24)]
                assert int(np.argmin(errs)) == f  # ... which is the frame the fixture wrote there
                assert np.array_equal(mask, sav['masks'][f // STRIDE][obj])
            assert r['source'] == 'sav' and r['record_id'] == f'sav_000001_manual.json masklet {obj}'
            assert r['expression'] is None and r['category_name'] is None and r['sample_idx'] == i
            seen.add((obj, fa, fb))
    assert {(a // STRIDE, b // STRIDE) for o, a, b in seen if o == 1} == {(1, 4), (4, 1)}  # both directions
    assert len({(a, b) for o, a, b in seen if o == 0}) > 10


def test_sav_test_mode_and_determinism(sav):
    test = SAVMaskletDataset(data_root=str(sav['root']), on_bad_record='skip', pipeline=PIPE, test_mode=True)
    assert [test[i]['frame_indices'] for i in range(2)] == [(0, 20), (4, 16)]  # first + last valid frame
    ds = SAVMaskletDataset(data_root=str(sav['root']), on_bad_record='skip', pipeline=PIPE, serialize_data=False)
    again = SAVMaskletDataset(data_root=str(sav['root']), on_bad_record='skip', pipeline=PIPE)
    for s in range(5):
        a, b = ds[_seeded(0, s)], again[_seeded(0, s)]
        assert a['frame_indices'] == b['frame_indices'] and np.array_equal(a['img'], b['img'])
    assert len({ds[_seeded(0, s)]['frame_indices'] for s in range(10)}) > 1
    gap = SAVMaskletDataset(data_root=str(sav['root']), on_bad_record='skip', max_frame_gap=1, pipeline=PIPE)
    assert all(abs(a - b) == STRIDE for s in range(20) for a, b in [gap[_seeded(0, s)]['frame_indices']])


def test_frame_pair_choice_rules():
    assert frame_pair_candidates([0, 2, 3], max_gap=2) == [(0, 2), (2, 3)]
    assert frame_pair_candidates([5], allow_same=True) == [(5, 5)]
    assert choose_frame_pair([1, 4, 9], deterministic=True) == (1, 9)
    assert choose_frame_pair([1, 4, 9], max_gap=3, deterministic=True) == (1, 4)
    with pytest.raises(ValueError, match='no frame pair'):
        choose_frame_pair([3])


def test_sav_missing_or_unreadable_video_names_the_file_and_record(tmp_path):
    write_sav(tmp_path / 'a', video=False)
    ds = SAVMaskletDataset(data_root=str(tmp_path / 'a'), on_bad_record='skip', pipeline=PIPE)
    with pytest.raises(ReferringRecordError, match=r'masklet 0 .*video file not found: .*sav_000001\.mp4'):
        ds[0]
    with pytest.raises(ReferringRecordError, match=r'sav_000001_manual\.json: video file not found: .*\.mp4'):
        SAVMaskletDataset(data_root=str(tmp_path / 'a'), check_files=True)
    with pytest.raises(ReferringRecordError, match='no usable masklet .*skipped: 1 missing video'):
        SAVMaskletDataset(data_root=str(tmp_path / 'a'), check_files=True, on_bad_record='skip')
    write_sav(tmp_path / 'b', video=False)
    (tmp_path / 'b' / 'sav_000001.mp4').write_bytes(b'\x00not a video' * 100)
    ds = SAVMaskletDataset(data_root=str(tmp_path / 'b'), on_bad_record='skip', pipeline=PIPE)
    with pytest.raises(ReferringRecordError, match=r'cannot open video .*sav_000001\.mp4') as e:
        ds[0]
    assert e.value.reason == 'unreadable video'


def test_sav_video_ids_list_layout_and_lazy_init(sav, tmp_path):
    (tmp_path / 'ids.txt').write_text('# subset\nsav_000001\nsav_000009\n')
    ds = SAVMaskletDataset(data_root=str(sav['root']), video_ids=str(tmp_path / 'ids.txt'), on_bad_record='skip')
    assert len(ds) == 2 and ds.skipped['missing json'] == 1
    nested = tmp_path / 'release'
    write_sav(nested / 'sav_000', video=False)
    (nested / 'sav_000' / 'sav_000001.mp4').symlink_to(sav['root'] / 'sav_000001.mp4')
    rec = SAVMaskletDataset(data_root=str(nested), recursive=True, on_bad_record='skip', pipeline=PIPE)
    assert len(rec) == 2 and rec[0]['video_path'].endswith('sav_000/sav_000001.mp4')
    lazy = SAVMaskletDataset(data_root=str(tmp_path / 'nothing'), lazy_init=True)
    with pytest.raises(FileNotFoundError, match='no SA-V JSON'):
        lazy.full_init()


def test_read_video_frames_sequential_equals_seek(sav):
    mp4 = str(sav['root'] / 'sav_000001.mp4')
    seek = read_video_frames(mp4, [20, 4, 4, 0], 'x')
    seq = read_video_frames(mp4, [20, 4, 4, 0], 'x', sequential=True)
    assert all(np.array_equal(a, b) for a, b in zip(seek, seq))
    assert np.array_equal(seek[0], sav['decoded'][20])
    with pytest.raises(ReferringRecordError, match='cannot read frame 99'):
        read_video_frames(mp4, [99], 'x')


# ---------------------------------------------------------------------------------------------------- npz
def _pair(seed=0, h=12, w=10):
    rng = np.random.default_rng(seed)
    frames = rng.integers(0, 256, (2, h, w, 3), dtype=np.uint8)
    masks = np.zeros((2, h, w), bool)
    masks[0, 1:4, 2:5] = masks[1, 5:9, 3:8] = True
    return frames, masks


def test_npz_round_trip_is_exact_and_byte_stable(tmp_path):
    frames, masks = _pair()
    a = write_frame_pair_npz(tmp_path / 'a.npz', frames, masks, (8, 20), 'sav_9', 3, expression='a cat',
                             category_name='cat')
    b = write_frame_pair_npz(tmp_path / 'b' / 'b.npz', list(frames), list(masks), [8, 20], 'sav_9', 3,
                             expression='a cat', category_name='cat')
    assert a.read_bytes() == b.read_bytes()
    d = read_frame_pair_npz(a)
    assert np.array_equal(d['frames'], frames) and np.array_equal(d['masks'], masks)
    assert d['frame_indices'].tolist() == [8, 20] and d['frame_indices'].dtype == np.int64
    assert (d['video_id'], d['object_id'], d['expression'], d['category_name']) == ('sav_9', 3, 'a cat', 'cat')
    with np.load(a) as z:  # plain numpy reads it, with the documented dtypes
        assert set(z.files) == {'frames', 'masks', 'frame_indices', 'video_id', 'object_id', 'expression',
                                'category_name'}
        assert z['masks'].dtype == bool and z['object_id'].dtype == np.int64 and z['video_id'].shape == ()
    with zipfile.ZipFile(a) as z:
        assert all(i.compress_type == zipfile.ZIP_DEFLATED for i in z.infolist())
    with pytest.raises(ValueError, match='mask 1 is empty'):
        write_frame_pair_npz(tmp_path / 'c.npz', frames, np.stack([masks[0], masks[0] & False]), (0, 1), 'v', 0)
    with pytest.raises(ValueError, match=r'frames must be uint8 \(2, H, W, 3\)'):
        write_frame_pair_npz(tmp_path / 'c.npz', frames[:1], masks[:1], (0, 1), 'v', 0)


def test_npz_dataset_loads_pairs_and_handles_bad_files(tmp_path):
    frames, masks = _pair()
    write_frame_pair_npz(tmp_path / 'v1' / 'p0.npz', frames, masks, (0, 4), 'v1', 0)
    write_frame_pair_npz(tmp_path / 'v1' / 'p1.npz', frames[::-1], masks[::-1], (4, 8), 'v1', 1, category_name='dog')
    ds = SAVFramePairNpzDataset(data_root=str(tmp_path), pipeline=PIPE)
    assert len(ds) == 2
    r = ds[1]
    _check_contract(r)
    assert np.array_equal(r['img'], frames[1]) and np.array_equal(r['region_mask2'], masks[0])
    assert r['img_path'].endswith('v1/p1.npz#frame=4') and r['img2_path'].endswith('#frame=8')
    assert (r['source'], r['record_id'], r['category_name'], r['expression']) == ('sav_npz', 'v1/p1.npz', 'dog', None)
    swap = SAVFramePairNpzDataset(data_root=str(tmp_path), pipeline=PIPE, random_order=True)
    orders = {swap[_seeded(0, s)]['frame_indices'] for s in range(12)}
    assert orders == {(0, 4), (4, 0)}
    assert {swap[_seeded(0, 3)]['frame_indices'] for _ in range(3)} == {swap[_seeded(0, 3)]['frame_indices']}
    # bad files: garbage bytes, an empty mask (written around the writer's check)
    (tmp_path / 'v1' / 'p2.npz').write_bytes(b'garbage')
    np.savez_compressed(tmp_path / 'v1' / 'p3.npz', frames=frames, masks=np.zeros_like(masks),
                        frame_indices=np.array([0, 1]), video_id=np.array('v'), object_id=np.array(0))
    ds = SAVFramePairNpzDataset(data_root=str(tmp_path), pipeline=PIPE)
    with pytest.raises(ReferringRecordError, match=r'v1/p2\.npz.*cannot read frame-pair npz'):
        ds[2]
    with pytest.raises(ReferringRecordError, match=r'v1/p3\.npz.*mask 0 is empty'):
        ds[3]
    skip = SAVFramePairNpzDataset(data_root=str(tmp_path), pipeline=PIPE, on_bad_record='skip')
    assert skip.pipeline(skip.get_data_info(3)) is None  # mmengine then draws another sample
    assert skip[_seeded(3, 0)]['source'] == 'sav_npz'
    checked = SAVFramePairNpzDataset(data_root=str(tmp_path), check_files=True, on_bad_record='skip')
    assert len(checked) == 2 and checked.skipped == {'unreadable npz': 1, 'empty mask': 1}
    with pytest.raises(ReferringRecordError, match='p2.npz'):
        SAVFramePairNpzDataset(data_root=str(tmp_path), check_files=True)


# ---------------------------------------------------------------------------------------------------- converter
def _converter():
    spec = importlib.util.spec_from_file_location('sav_to_frame_pairs', CONVERTER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_converter_round_trip_equals_the_masklet_dataset(sav, tmp_path):
    root = tmp_path / 'sav'
    root.mkdir()
    for name in ('sav_000001.mp4', 'sav_000001_manual.json'):
        (root / name).symlink_to(sav['root'] / name)
    write_sav(root, 'sav_000002', video=False)
    (root / 'sav_000002.mp4').write_bytes(b'garbage' * 50)
    out = tmp_path / 'pairs'
    summary = _converter().main(['--data-root', str(root), '--out', str(out), '--max-pairs-per-masklet', '3'])
    assert summary['pairs'] == 4 and summary['masklets'] == 2  # object 0: 3 of 15 pairs; object 1: its only pair
    assert summary['skipped'] == {'empty mask': 2, 'too few valid frames': 2, 'unreadable video': 2}
    files = sorted(p.relative_to(out).as_posix() for p in out.rglob('*.npz'))
    assert len(files) == 4 and all(f.startswith('sav_000001/manual_00') for f in files)
    assert 'sav_000001/manual_001_00004_00016.npz' in files
    again = tmp_path / 'again'
    _converter().main(['--data-root', str(root), '--out', str(again), '--max-pairs-per-masklet', '3'])
    assert all((out / f).read_bytes() == (again / f).read_bytes() for f in files)  # same choice, same bytes
    masklets = SAVMaskletDataset(data_root=str(root), on_bad_record='skip')
    index = {(masklets.get_data_info(i)['video_id'], masklets.get_data_info(i)['object_index']): i
             for i in range(len(masklets))}
    pairs = SAVFramePairNpzDataset(data_root=str(out), pipeline=PIPE)
    for i in range(len(pairs)):
        got = pairs[i]
        d = read_frame_pair_npz(got['npz_path'])
        ref = masklets.load_pair(index[(d['video_id'], d['object_id'])], *(f // STRIDE for f in d['frame_indices']))
        assert got['frame_indices'] == ref['frame_indices']
        for k in ('img', 'region_mask', 'img2', 'region_mask2'):
            assert np.array_equal(got[k], ref[k]), k


# ---------------------------------------------------------------------------------------------------- toy pairs
def test_toy_frame_pairs_are_moved_renders_of_one_scene(tmp_path):
    meta = ensure_toy_frame_pairs(tmp_path / 'toy', **TOY)
    c = meta['counts']
    assert c['train']['scenes'] == 4 and c['val']['scenes'] == 2
    for split in ('train', 'val'):
        assert c[split]['pairs'] + c[split]['dropped_small'] == c[split]['things']
        assert len(list((tmp_path / 'toy' / split).glob('*.npz'))) == c[split]['pairs']
    assert json.loads((tmp_path / 'toy' / 'meta.json').read_text())['params']['min_area'] == 20
    # the pairs are exactly a spec drawn twice (visible masks of the same thing before and after the move)
    rng = np.random.default_rng(np.random.SeedSequence([1, 0, 0]))
    spec = sample_toy_pair_scene(rng, (48, 48), 4, 1, 0.15, 0.15)
    img_a, vis_a = draw_toy_pair_scene(spec, moved=False)
    img_b, vis_b = draw_toy_pair_scene(spec, moved=True)
    moved = 0
    for f in sorted((tmp_path / 'toy' / 'train').glob('000000_*.npz')):
        d = read_frame_pair_npz(f)
        k = d['object_id']
        assert np.array_equal(d['frames'][0], img_a) and np.array_equal(d['frames'][1], img_b)
        assert np.array_equal(d['masks'][0], vis_a[k]) and np.array_equal(d['masks'][1], vis_b[k])
        assert d['video_id'] == 'toy_train_000000' and d['frame_indices'].tolist() == [0, 1]
        moved += not np.array_equal(d['masks'][0], d['masks'][1])
    assert moved >= 1
    # deterministic bytes; a different copy is refused; min_area drops more pairs and counts them
    other = generate_toy_frame_pairs(tmp_path / 'other', **TOY)
    assert other['counts'] == c
    for f in (tmp_path / 'toy' / 'train').glob('*.npz'):
        assert f.read_bytes() == (tmp_path / 'other' / 'train' / f.name).read_bytes()
    with pytest.raises(ValueError, match='generated differently'):
        ensure_toy_frame_pairs(tmp_path / 'toy', **{**TOY, 'seed': 2})
    strict = generate_toy_frame_pairs(tmp_path / 'strict', **{**TOY, 'min_area': 300})
    assert strict['counts']['train']['dropped_small'] > c['train']['dropped_small']


def test_toy_dataset_and_multi_source_max_samples(sav, tmp_path):
    toy = ToyFramePairDataset(data_root=str(tmp_path / 'toy'), split='val', generate=TOY, pipeline=PIPE)
    r = toy[0]
    _check_contract(r)
    assert r['source'] == 'toy_pairs' and r['category_name'] in ('ball', 'box', 'sign', 'ring', 'star', 'cross')
    with pytest.raises(FileNotFoundError, match='generate=False'):
        ToyFramePairDataset(data_root=str(tmp_path / 'none'), generate=False)
    mix = MultiSourceDataset(dict(
        sav=dict(dataset=dict(type='SAVMaskletDataset', data_root=str(sav['root']), on_bad_record='skip',
                              pipeline=PIPE), max_samples=1),
        toy=dict(dataset=toy, max_samples=3)))
    assert len(mix) == 1 + min(3, len(toy)) and mix.metainfo == {'task': 'region_pair'}
    assert [mix[i]['source'] for i in range(len(mix))] == ['sav'] + ['toy_pairs'] * (len(mix) - 1)
    a, b = mix[_seeded(0, 4)], mix[_seeded(0, 4)]
    assert a['frame_indices'] == b['frame_indices'] and np.array_equal(a['img2'], b['img2'])
    assert DATASETS.get('SAVFramePairNpzDataset') is SAVFramePairNpzDataset
    assert type(TRANSFORMS.build(dict(type='LoadRegionPair'))).__name__ == 'LoadRegionPair'
    with pytest.raises(KeyError, match="source 'nope'"):
        TRANSFORMS.build(dict(type='LoadRegionPair'))(dict(source='nope', record_id='x'))
