"""Client for any OpenAI-compatible ``/chat/completions`` endpoint (OpenAI, vLLM, llama.cpp server, ...).

The API key is read only from the environment variable named by ``api_key_env``; it is sent in the
``Authorization`` header and never stored in the config dump, logged, or included in error messages.
"""
from __future__ import annotations

import os
from collections.abc import Sequence

from mmengine.logging import MMLogger

from ..redact import register_secret
from ..registry import LLMS
from .base import LLMBackend, LLMBadResponse, LLMError, LLMRequestError, LLMServerError, LLMTimeout, call_with_retry


@LLMS.register_module()
class OpenAICompatibleLLM(LLMBackend):
    """Args:
        endpoint: base URL, e.g. ``https://api.openai.com/v1`` (``/chat/completions`` is appended unless the
            URL already ends with it).
        model: model name sent in the request (e.g. ``gpt-4.1-mini``).
        api_key_env: name of the environment variable holding the key (``None`` = no auth header, for
            local servers).
        temperature, max_tokens, extra_body: request fields.
        connect_timeout, read_timeout: seconds (``requests`` timeouts; a slow answer past ``read_timeout``
            is a retryable ``llm_timeout``).
        max_retries, backoff, backoff_factor, max_backoff: retry policy for timeouts, connection errors,
            HTTP 429 and 5xx, and unparsable protocol responses.
        send_seed: pass the caller's per-item seed in the request (``seed`` field) for reproducibility.
    """

    def __init__(self, endpoint: str, model: str, api_key_env: str | None = 'OPENAI_API_KEY',
                 temperature: float = 0.7, max_tokens: int | None = None, connect_timeout: float = 10.0,
                 read_timeout: float = 120.0, max_retries: int = 3, backoff: float = 1.0,
                 backoff_factor: float = 2.0, max_backoff: float = 30.0, send_seed: bool = True,
                 extra_body: dict | None = None, require_api_key: bool = True, sleep=None):
        import requests  # noqa: F401  (fail early when the `nss` extra is missing)
        self.endpoint = endpoint.rstrip('/')
        if not self.endpoint.endswith('/chat/completions'):
            self.endpoint += '/chat/completions'
        self.model = model
        self.api_key_env = api_key_env
        if api_key_env and require_api_key and not os.environ.get(api_key_env):
            raise RuntimeError(
                f'OpenAICompatibleLLM: environment variable {api_key_env} is not set. Export your '
                f'API key there (it is never read from the config), or set api_key_env=None '
                f'for a local server without authentication.')
        if api_key_env:  # whatever the server echoes back, the key never reaches a file or a log
            register_secret(os.environ.get(api_key_env))
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.timeout = (connect_timeout, read_timeout)
        self.retry = dict(max_retries=max_retries, backoff=backoff, backoff_factor=backoff_factor,
                          max_backoff=max_backoff)
        self.send_seed = send_seed
        self.extra_body = dict(extra_body or {})
        self._sleep = sleep
        self.num_requests = 0  # HTTP requests sent (all attempts)
        self._session = None

    def describe(self) -> dict:
        return {
            'type': type(self).__name__,
            'endpoint': self.endpoint,
            'model': self.model,
            'temperature': self.temperature,
            'api_key_env': self.api_key_env
        }

    def _scrub(self, text: str) -> str:
        key = os.environ.get(self.api_key_env) if self.api_key_env else None
        text = str(text)[:300]
        return text.replace(key, '***') if key else text

    def _once(self, messages, seed):
        import requests
        if self._session is None:
            self._session = requests.Session()
        headers = {'Content-Type': 'application/json'}
        key = os.environ.get(self.api_key_env) if self.api_key_env else None
        if key:
            headers['Authorization'] = f'Bearer {key}'
        body = {'model': self.model, 'messages': list(messages), 'temperature': self.temperature}
        if self.max_tokens:
            body['max_tokens'] = self.max_tokens
        if self.send_seed and seed is not None:
            body['seed'] = int(seed)
        body.update(self.extra_body)
        self.num_requests += 1
        try:
            r = self._session.post(self.endpoint, json=body, headers=headers, timeout=self.timeout)
        except requests.Timeout:
            raise LLMTimeout(f'no answer within {self.timeout[1]}s') from None
        except requests.ConnectionError as e:
            raise LLMError('llm_connection_error', self._scrub(type(e).__name__)) from None
        if r.status_code == 429 or r.status_code >= 500:
            raise LLMServerError(r.status_code, self._scrub(r.text))
        if r.status_code >= 400:
            raise LLMRequestError(r.status_code, self._scrub(r.text))
        try:
            data = r.json()
            content = data['choices'][0]['message']['content']
        except Exception:
            raise LLMBadResponse(self._scrub(r.text)) from None
        if not isinstance(content, str):
            raise LLMBadResponse('content is not a string')
        return content

    def chat(self, messages: Sequence[dict], seed: int | None = None) -> str:
        kw = dict(self.retry)
        if self._sleep is not None:
            kw['sleep'] = self._sleep
        return call_with_retry(lambda: self._once(messages, seed), logger=MMLogger.get_current_instance(),
                               what=f'chat-completions {self.model}', **kw)
