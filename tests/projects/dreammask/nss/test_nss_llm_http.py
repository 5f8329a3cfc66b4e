"""The OpenAI-compatible backend against a real local HTTP server."""
import time

import pytest
from chat_server import ChatServer

from projects.dreammask.dreammask.nss.llm import (
    LLMBadResponse,
    LLMRequestError,
    LLMServerError,
    LLMTimeout,
    OpenAICompatibleLLM,
)

KEY_ENV = 'NSS_TEST_API_KEY'
SECRET = 'sk-test-SECRET-0123456789'
MSG = [{'role': 'user', 'content': 'hi'}]


@pytest.fixture(autouse=True)
def api_key(monkeypatch):
    monkeypatch.setenv(KEY_ENV, SECRET)


def client(url, sleeps=None, **kw):
    kw.setdefault('max_retries', 3)
    kw.setdefault('read_timeout', 5.0)
    return OpenAICompatibleLLM(endpoint=url, model='test-model', api_key_env=KEY_ENV, temperature=0.2,
                               backoff=0.5, backoff_factor=2.0, max_backoff=1.5,
                               sleep=(sleeps.append if sleeps is not None else None), **kw)


def test_good_answer_and_request_contents():
    with ChatServer([('ok', 'hello')]) as srv:
        assert client(srv.url).chat(MSG, seed=11) == 'hello'
    req = srv.requests[0]
    assert req['path'] == '/v1/chat/completions'
    assert req['body'] == {'model': 'test-model', 'messages': MSG, 'temperature': 0.2, 'seed': 11}
    assert req['headers']['Authorization'] == f'Bearer {SECRET}'


def test_http_500_retries_with_exponential_backoff_then_succeeds():
    sleeps = []
    with ChatServer([('status', 500), ('status', 503), ('status', 429), ('ok', 'fine')]) as srv:
        c = client(srv.url, sleeps)
        assert c.chat(MSG) == 'fine'
    assert len(srv.requests) == 4 and c.num_requests == 4
    assert sleeps == [0.5, 1.0, 1.5]  # 0.5 * 2**k capped at max_backoff


def test_http_500_forever_raises_after_max_retries():
    sleeps = []
    with ChatServer(default=lambda req: ('status', 500)) as srv:
        with pytest.raises(LLMServerError) as e:
            client(srv.url, sleeps, max_retries=2).chat(MSG)
    assert e.value.reason == 'llm_http_500' and len(srv.requests) == 3 and len(sleeps) == 2
    assert SECRET not in str(e.value)


def test_client_error_is_not_retried():
    with ChatServer(default=lambda req: ('status', 401)) as srv:
        with pytest.raises(LLMRequestError):
            client(srv.url, []).chat(MSG)
    assert len(srv.requests) == 1


@pytest.mark.parametrize('body', ['this is not json', '{"choices": []}', '{"choices": [{"message": {}}]}'])
def test_malformed_protocol_response_is_retried_then_reported(body):
    sleeps = []
    with ChatServer(default=lambda req: ('raw', body)) as srv:
        with pytest.raises(LLMBadResponse):
            client(srv.url, sleeps, max_retries=1).chat(MSG)
    assert len(srv.requests) == 2


def test_slow_response_past_timeout_then_recovery():
    sleeps = []
    with ChatServer([('sleep', 1.0, 'late'), ('ok', 'quick')]) as srv:
        c = client(srv.url, sleeps, read_timeout=0.2)
        t0 = time.time()
        assert c.chat(MSG) == 'quick'
        assert time.time() - t0 < 1.0 + 0.5  # gave up on the slow one at the read timeout
    assert len(sleeps) == 1


def test_timeouts_exhaust_retries():
    with ChatServer(default=lambda req: ('sleep', 0.6, 'late')) as srv:
        with pytest.raises(LLMTimeout) as e:
            client(srv.url, [], read_timeout=0.15, max_retries=1).chat(MSG)
    assert e.value.reason == 'llm_timeout' and len(srv.requests) == 2


def test_connection_refused_is_an_llm_error():
    from projects.dreammask.dreammask.nss.llm import LLMError
    with ChatServer() as srv:
        url = srv.url
    with pytest.raises(LLMError) as e:
        client(url, [], max_retries=1, connect_timeout=0.5).chat(MSG)
    assert e.value.reason == 'llm_connection_error'


def test_missing_api_key_env_fails_at_construction(monkeypatch):
    monkeypatch.delenv(KEY_ENV)
    with pytest.raises(RuntimeError, match=KEY_ENV):
        OpenAICompatibleLLM(endpoint='http://127.0.0.1:9/v1', model='m', api_key_env=KEY_ENV)
    OpenAICompatibleLLM(endpoint='http://127.0.0.1:9/v1', model='m', api_key_env=None)  # local server: fine
