"""End-to-end toy pipeline: format, resume after a crash byte-for-byte, determinism, atomicity, secrets."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from chat_server import ChatServer, good_layout_html, names_in_layout_prompt
from mmengine.config import Config
from PIL import Image

from projects.dreammask.dreammask.nss import NSSPipeline
from projects.dreammask.dreammask.nss import io as nss_io
from projects.dreammask.dreammask.nss.masks import writer as writer_mod

REPO = Path(__file__).resolve().parents[4]
TOY = REPO / 'configs' / 'nss' / 'toy.py'
SKIP_DIRS = {'logs', 'summary'}


def toy_cfg(num_scenes=6, **over):
    cfg = Config.fromfile(str(TOY))
    cfg.num_scenes = num_scenes
    cfg.show_progress = False
    cfg.merge_from_dict(over)
    return cfg


def snapshot(root: Path) -> dict:
    """{relative path: bytes} of every output file (logs/summaries/config dump excluded)."""
    out = {}
    for p in sorted(root.rglob('*')):
        rel = p.relative_to(root)
        if p.is_file() and rel.parts[0] not in SKIP_DIRS and rel.name != 'config.py':
            out[str(rel)] = p.read_bytes()
    return out


@pytest.fixture(scope='module')
def toy_run(tmp_path_factory):
    wd = tmp_path_factory.mktemp('toy')
    summ = NSSPipeline(toy_cfg(), work_dir=str(wd)).run()
    return wd, summ


def test_toy_outputs_in_dreammask_format(toy_run):
    wd, summ = toy_run
    assert summ['cna']['kept'] == 2
    novel = json.loads((wd / 'cna' / 'novel_categories.json').read_text())['categories']
    assert novel == [{'name': 'cross', 'count': 3}, {'name': 'star', 'count': 3}]
    lay_dir = wd / 'layouts_dataset'
    for i in range(6):
        for ext in ('json', 'html', 'png'):
            assert (lay_dir / f'scene_{i:05d}.{ext}').is_file()
        assert (lay_dir / f'real_{i:05d}.png').is_file()
    proc = wd / 'processed_dataset'
    scenes = sorted(proc.glob('scene_*.json'))
    assert len(scenes) == summ['masks']['scenes_written'] > 0
    n_obj = 0
    for sp in scenes:
        rec = json.loads(sp.read_text())
        assert list(rec) == ['scene_id', 'real_image', 'canvas_width', 'canvas_height', 'objects']
        assert rec['scene_id'] == sp.stem and rec['canvas_width'] == rec['canvas_height'] == 128
        assert rec['real_image'] == f'images/real_{sp.stem[-5:]}.png'
        img = Image.open(proc / rec['real_image'])
        assert img.size == (128, 128) and img.mode == 'RGB'
        layout = json.loads((lay_dir / sp.name).read_text())
        for o in rec['objects']:
            assert list(o) == ['index', 'name', 'box', 'mask_path', 'clip_score', 'mask_uncertainty']
            assert list(o['box']) == ['x', 'y', 'w', 'h']
            assert o['mask_path'] == f"masks/{rec['scene_id']}_obj_{o['index']:02d}.png"
            assert o['clip_score'] >= 0.25 and o['mask_uncertainty'] <= 0.30
            assert layout['objects'][o['index']]['box'] == o['box']
            m = np.asarray(Image.open(proc / o['mask_path']))
            assert m.shape == (128, 128) and set(np.unique(m)) <= {0, 255} and m.any()
            n_obj += 1
    assert n_obj == summ['masks']['kept']
    names = {json.loads(s.read_text())['objects'][0]['name'] for s in scenes}
    toy_names = {'ball', 'box', 'sign', 'ring', 'star', 'cross', 'sky', 'wall', 'grass', 'water', 'sand'}
    assert names <= toy_names
    # summary numbers add up: every scored object is kept or rejected with a reason
    m = summ['masks']
    assert m['generated'] == m['kept'] + m['rejected_total'] and set(
        m['rejected']) <= {'high_mask_uncertainty', 'low_clip_score', 'empty_mask'}
    assert json.loads((wd / 'summary' / 'masks.json').read_text())['kept'] == m['kept']


def test_rerun_skips_everything_and_changes_nothing(toy_run, tmp_path):
    wd, _ = toy_run
    before = snapshot(wd)
    summ = NSSPipeline(toy_cfg(), work_dir=str(wd)).run()
    assert summ['layout']['generated'] == 0 and summ['layout']['skipped_already_done'] == 6
    assert summ['masks']['generated'] == 0 and summ['render']['skipped_already_done'] == 6
    assert snapshot(wd) == before


class Crash(BaseException):
    """Stands in for a kill: not an Exception, so nothing in the pipeline swallows it."""


def test_interrupted_run_resumes_to_identical_files(toy_run, tmp_path, monkeypatch):
    ref, _ = toy_run
    wd = tmp_path / 'crashy'
    real_write = writer_mod.write_processed_scene
    calls = {'n': 0}

    def crashing(*a, **k):
        calls['n'] += 1
        if calls['n'] == 3:
            raise Crash()
        return real_write(*a, **k)

    import projects.dreammask.dreammask.nss.pipeline as pl
    monkeypatch.setattr(pl, 'write_processed_scene', crashing)
    with pytest.raises(Crash):
        NSSPipeline(toy_cfg(), work_dir=str(wd)).run()
    monkeypatch.setattr(pl, 'write_processed_scene', real_write)
    assert len(list((wd / 'processed_dataset').glob('scene_*.json'))) == 2
    summ = NSSPipeline(toy_cfg(), work_dir=str(wd)).run()
    assert summ['masks']['skipped_already_done'] == 2
    assert snapshot(wd) == snapshot(ref)


def test_crash_inside_a_file_write_leaves_no_partial_file(toy_run, tmp_path, monkeypatch):
    ref, _ = toy_run
    wd = tmp_path / 'atomic'
    real_replace = os.replace
    calls = {'n': 0}

    def dying_replace(src, dst):
        calls['n'] += 1
        if calls['n'] == 40:
            raise Crash()
        return real_replace(src, dst)

    monkeypatch.setattr(nss_io.os, 'replace', dying_replace)
    with pytest.raises(Crash):
        NSSPipeline(toy_cfg(), work_dir=str(wd)).run()
    monkeypatch.setattr(nss_io.os, 'replace', real_replace)
    # at most leftovers with a temp name; every final-named file is complete and readable
    for p in wd.rglob('*'):
        if p.is_file() and nss_io.TMP_MARK not in p.name:
            if p.suffix == '.json':
                json.loads(p.read_text())
            elif p.suffix == '.png':
                Image.open(p).load()
    NSSPipeline(toy_cfg(), work_dir=str(wd)).run()
    assert not [p for p in wd.rglob('*') if nss_io.TMP_MARK in p.name]
    assert snapshot(wd) == snapshot(ref)


def test_determinism_seed(toy_run, tmp_path):
    ref, _ = toy_run
    NSSPipeline(toy_cfg(), work_dir=str(tmp_path / 'a')).run()
    assert snapshot(tmp_path / 'a') == snapshot(ref)
    NSSPipeline(toy_cfg(seed=1), work_dir=str(tmp_path / 'b')).run(['cna', 'layout'])
    a = (tmp_path / 'a' / 'layouts_dataset' / 'scene_00000.json').read_bytes()
    b = (tmp_path / 'b' / 'layouts_dataset' / 'scene_00000.json').read_bytes()
    assert a != b


def test_stage_subsets_and_missing_prerequisite(tmp_path):
    wd = tmp_path / 'sub'
    with pytest.raises(FileNotFoundError, match='cna'):
        NSSPipeline(toy_cfg(), work_dir=str(wd)).run(['layout'])
    NSSPipeline(toy_cfg(), work_dir=str(wd)).run(['cna', 'layout'])
    assert not list((wd / 'layouts_dataset').glob('real_*.png'))
    summ = NSSPipeline(toy_cfg(), work_dir=str(wd)).run(['render'])
    assert summ['render']['kept'] == 6


def test_llm_layouts_over_http_with_faults_and_key_never_written(tmp_path, monkeypatch):
    secret = 'sk-live-DO-NOT-LEAK-42'
    monkeypatch.setenv('NSS_TEST_KEY', secret)
    state = {'n': 0}

    def respond(body):
        state['n'] += 1
        n = state['n']
        if n == 1:
            return ('status', 500)  # scene 0, retried by the backend
        if n == 3:
            return ('ok', 'Sure! Here is a layout: <p>oops</p>'
                    )  # scene 1: malformed, retried by the generator
        if n in (5, 6, 7):
            return ('status', 502)  # scene 2 attempt 1: exhausts 2 backend retries
        if n in (9, 10):
            return ('ok', '<div class="object" data-name="dragon" style="left:0px; top:0px; width:9px; '
                    'height:9px"></div>')  # scene 3: unknown name on every attempt -> rejected
        names = names_in_layout_prompt(body)
        return ('ok', good_layout_html(names, 128, 128))

    with ChatServer(default=respond) as srv:
        llm = dict(type='OpenAICompatibleLLM', endpoint=srv.url, model='layout-model',
                   api_key_env='NSS_TEST_KEY', max_retries=2, backoff=0.01, read_timeout=5.0)
        cfg = toy_cfg(num_scenes=5)
        cfg.layout.generator = dict(type='LLMLayoutGenerator', llm=llm, max_attempts=2)
        summ = NSSPipeline(cfg, work_dir=str(tmp_path / 'llm')).run()
    lay = summ['layout']
    assert lay['generated'] == 5 and lay['kept'] == 4 and lay['rejected'] == {'unknown_name': 1}
    st = json.loads((tmp_path / 'llm' / 'state' / 'layout' / 'scene_00003.json').read_text())
    assert st['attempt_reasons'] == ['unknown_name', 'unknown_name']
    st2 = json.loads((tmp_path / 'llm' / 'state' / 'layout' / 'scene_00002.json').read_text())
    assert st2['status'] == 'done' and st2['attempt_reasons'] == ['llm_http_502']
    assert all(r['headers']['Authorization'] == f'Bearer {secret}' for r in srv.requests)
    assert summ['masks']['kept'] > 0
    for p in (tmp_path / 'llm').rglob('*'):
        if p.is_file():
            assert secret.encode() not in p.read_bytes(), p


def test_cli_runs_toy_config(tmp_path):
    r = subprocess.run([
        sys.executable,
        str(REPO / 'tools' / 'nss' / 'run.py'),
        str(TOY), '--work-dir',
        str(tmp_path / 'cli'), '--num-scenes', '3', '--no-progress', '--stages', 'all'
    ], cwd=str(REPO), capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    assert '[masks] generated=' in r.stdout
    assert len(list((tmp_path / 'cli' / 'layouts_dataset').glob('real_*.png'))) == 3


def test_toy_sam_clip_config_runs_the_real_mask_path(tmp_path):
    cfg = Config.fromfile(str(REPO / 'configs' / 'nss' / 'toy_sam_clip.py'))
    cfg.num_scenes = 2
    cfg.show_progress = False
    summ = NSSPipeline(cfg, work_dir=str(tmp_path / 'sc')).run()
    assert summ['masks']['scorer']['type'] == 'SamClipScorer'
    assert summ['masks']['generated'] == summ['masks']['kept'] + summ['masks']['rejected_total'] > 0
    for sp in (tmp_path / 'sc' / 'processed_dataset').glob('scene_*.json'):
        for o in json.loads(sp.read_text())['objects']:
            assert 0.0 <= o['mask_uncertainty'] <= 1.0 and -1.0 <= o['clip_score'] <= 1.0


def test_external_images_renderer_missing_image_is_a_rejection(toy_run, tmp_path):
    ref, _ = toy_run
    ext = tmp_path / 'ext'
    ext.mkdir()
    for i in (0, 2, 3):  # images made "by another tool"; scene 1 missing; scene 4 at another size
        (ext / f'real_{i:05d}.png').write_bytes((ref / 'layouts_dataset' / f'real_{i:05d}.png').read_bytes())
    Image.new('RGB', (64, 64), (10, 200, 10)).save(ext / 'real_00004.png')
    cfg = toy_cfg(num_scenes=5)
    cfg.render.renderer = dict(type='ExternalImagesRenderer', image_dir=str(ext), batch_size=2)
    cfg.masks.scorer = dict(type='SamClipScorer', sam=dict(model_type='tiny'),
                            clip=dict(model='nss-tiny-vit', pretrained=None))
    cfg.masks.clip_threshold, cfg.masks.max_uncertainty = -1.0, 1.0
    summ = NSSPipeline(cfg, work_dir=str(tmp_path / 'w')).run()
    assert summ['render']['kept'] == 4 and summ['render']['rejected'] == {'missing_image': 1}
    lay = tmp_path / 'w' / 'layouts_dataset'
    assert (lay / 'real_00000.png').read_bytes() == (ref / 'layouts_dataset' / 'real_00000.png').read_bytes()
    assert Image.open(lay / 'real_00004.png').size == (128, 128)  # resized to the canvas
    assert not (tmp_path / 'w' / 'processed_dataset' / 'scene_00001.json').exists()


def test_missing_weights_fail_at_start_up_before_any_work(tmp_path):
    from projects.dreammask.dreammask.nss.errors import MissingModelError
    cfg = toy_cfg()
    ck = tmp_path / 'ckpt' / 'sam_vit_h_4b8939.pth'
    cfg.masks.scorer = dict(
        type='SamClipScorer', sam=dict(model_type='vit_h', checkpoint=str(ck)),
        clip=dict(model='ViT-B-32', pretrained='openai', cache_dir=str(tmp_path / 'clip')))
    with pytest.raises(MissingModelError) as e:
        NSSPipeline(cfg, work_dir=str(tmp_path / 'w')).run()
    assert str(ck) in str(e.value) and 'wget' in str(e.value)
    assert not (tmp_path / 'w' / 'cna' / 'novel_categories.json').exists()
    assert not list((tmp_path / 'w' / 'layouts_dataset').glob('*'))


def test_toy_output_passes_validate_dataset(toy_run):
    """The processed dataset passes the DreamMask-format validator (tools/nss/validate_dataset.py)."""
    wd, _ = toy_run
    r = subprocess.run([sys.executable, str(REPO / 'tools' / 'nss' / 'validate_dataset.py'),
                        str(wd / 'processed_dataset')], cwd=str(REPO), capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, (r.stdout[-2000:], r.stderr[-2000:])
