"""NSS faults from issue 9: credentials echoed by a server never reach the disk (item 6); an LLM outage is not
cached as finished and a stage that produces nothing fails the run (item 8)."""
from __future__ import annotations

import json
import socket
import sys
from pathlib import Path

import pytest
from chat_server import ChatServer, good_layout_html, names_in_layout_prompt
from mmengine.config import Config

from projects.dreammask.dreammask.nss import NSSPipeline
from projects.dreammask.dreammask.nss.pipeline import NSSStageError

REPO = Path(__file__).resolve().parents[4]
TOY = REPO / 'configs' / 'nss' / 'toy.py'
SECRET = 'sk-live-ECHOED-BY-THE-SERVER-7'


def _cfg(num_scenes=4, **over):
    cfg = Config.fromfile(str(TOY))
    cfg.num_scenes = num_scenes
    cfg.show_progress = False
    cfg.merge_from_dict(over)
    return cfg


def _http_llm(url: str) -> dict:
    return dict(type='OpenAICompatibleLLM', endpoint=url, model='m', api_key_env='NSS_TEST_KEY', max_retries=1,
                backoff=0.01, read_timeout=5.0, connect_timeout=2.0)


def _dead_url() -> str:
    with socket.socket() as s:  # a port nobody listens on: connection refused
        s.bind(('127.0.0.1', 0))
        return f'http://127.0.0.1:{s.getsockname()[1]}/v1'


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob('*') if p.is_file()}


def test_echoed_api_key_and_bearer_tokens_are_never_written(tmp_path, monkeypatch):
    monkeypatch.setenv('NSS_TEST_KEY', SECRET)
    echo = f'["star", "cross"] (debug: Authorization: Bearer {SECRET}; key={SECRET}; other Bearer abc.def-123456)'
    with ChatServer(default=lambda body: ('ok', echo)) as srv:
        cfg = _cfg()
        cfg.cna.llm = _http_llm(srv.url)
        cfg.cna.n_repeat = 2
        NSSPipeline(cfg, work_dir=str(tmp_path / 'w')).run(['cna'])
    assert all(r['headers']['Authorization'] == f'Bearer {SECRET}' for r in srv.requests)  # the key was used
    files = _files(tmp_path / 'w')
    raw = json.loads(files['cna/responses/repeat_00.json'])['raw']
    assert 'Bearer ***' in raw and 'key=***' in raw and 'abc.def-123456' not in raw  # the answer is kept, redacted
    for name, data in files.items():  # answers, states, summaries, config dump and the log file
        assert SECRET.encode() not in data, name


def test_llm_outage_is_retried_by_the_next_run(tmp_path, monkeypatch):
    monkeypatch.setenv('NSS_TEST_KEY', SECRET)
    work = tmp_path / 'w'
    cfg = _cfg()
    cfg.cna.llm = _http_llm(_dead_url())
    with pytest.raises(NSSStageError, match=r"\[cna\] 5 of 5 items failed with errors \{'llm_connection_error': 5\}"):
        NSSPipeline(cfg, work_dir=str(work)).run()
    assert not list((work / 'cna' / 'responses').glob('repeat_??.json'))  # nothing cached as finished
    assert len(list((work / 'cna' / 'responses').glob('repeat_??.failed.json'))) == 5
    assert not (work / 'cna' / 'novel_categories.json').exists()

    with ChatServer(default=lambda body: ('ok', '["star", "cross", "kite"]')) as srv:  # the server is back
        cfg.cna.llm = _http_llm(srv.url)
        summ = NSSPipeline(cfg, work_dir=str(work)).run()
    assert len(srv.requests) == 5
    assert summ['cna']['kept'] == 3 and summ['masks']['scenes_written'] > 0
    assert not list((work / 'cna' / 'responses').glob('*.failed.json'))


def test_layout_outage_fails_scenes_retryably(tmp_path, monkeypatch):
    monkeypatch.setenv('NSS_TEST_KEY', SECRET)
    work = tmp_path / 'w'
    cfg = _cfg()
    cfg.layout.generator = dict(type='LLMLayoutGenerator', llm=_http_llm(_dead_url()), max_attempts=2)
    with pytest.raises(NSSStageError, match=r'\[layout\] 4 of 4 items failed'):
        NSSPipeline(cfg, work_dir=str(work)).run()
    assert not list((work / 'state' / 'layout').glob('scene_?????.json'))
    with ChatServer(default=lambda body: ('ok', good_layout_html(names_in_layout_prompt(body), 128, 128))) as srv:
        cfg.layout.generator.llm = _http_llm(srv.url)
        summ = NSSPipeline(cfg, work_dir=str(work)).run(['layout'])
    assert summ['layout']['kept'] == 4 and summ['layout']['skipped_already_done'] == 0


def test_stage_that_produces_nothing_fails_with_reasons(tmp_path):
    cfg = _cfg(num_scenes=3)
    cfg.masks.clip_threshold = 2.0  # no object can pass: every object rejected
    with pytest.raises(NSSStageError, match=r"\[masks\] produced nothing from 3 items; reasons: \{'low_clip_score'"):
        NSSPipeline(cfg, work_dir=str(tmp_path / 'w')).run()


def test_cli_exit_code_and_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv('NSS_TEST_KEY', SECRET)
    sys.path.insert(0, str(REPO / 'tools' / 'nss'))
    import run as nss_run
    cfg = tmp_path / 'outage.py'
    cfg.write_text(f"_base_ = ['{TOY}']\n"
                   f"cna = dict(llm=dict(_delete_=True, **{_http_llm(_dead_url())!r}))\n")
    with pytest.raises(SystemExit) as exit_info:
        nss_run.run_tool(nss_run.main, [str(cfg), '--work-dir', str(tmp_path / 'w'), '--num-scenes', '2',
                                        '--no-progress'])
    assert exit_info.value.code == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert ': error: [cna] 5 of 5 items failed' in err[-1] and 'Traceback' not in '\n'.join(err)
