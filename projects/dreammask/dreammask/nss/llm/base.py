"""The small interface every LLM backend implements, and the retry-with-backoff policy."""
from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from mmengine.logging import MMLogger


class LLMError(RuntimeError):
    """A failed LLM call. ``reason`` is a short machine-readable tag recorded in summaries."""

    retryable = True

    def __init__(self, reason: str, detail: str = ''):
        self.reason = reason
        super().__init__(f'{reason}: {detail}' if detail else reason)


class LLMTimeout(LLMError):

    def __init__(self, detail=''):
        super().__init__('llm_timeout', detail)


class LLMServerError(LLMError):

    def __init__(self, status: int, detail=''):
        self.status = status
        super().__init__(f'llm_http_{status}', detail)


class LLMRequestError(LLMError):
    """A client error that retrying cannot fix (bad key, bad model name ...)."""
    retryable = False

    def __init__(self, status: int, detail=''):
        self.status = status
        super().__init__(f'llm_http_{status}', detail)


class LLMBadResponse(LLMError):

    def __init__(self, detail=''):
        super().__init__('llm_bad_response', detail)


class LLMBackend:
    """``chat(messages, seed=None) -> str``: one chat-completion; raises :class:`LLMError` on failure.

    ``messages`` are OpenAI-style ``{'role': 'system'|'user'|'assistant', 'content': str}`` dicts.
    Backends retry transport faults themselves (see :func:`call_with_retry`); callers retry
    *content* faults (unparsable answers) with their own bounded loop.
    """

    name = 'llm'

    def chat(self, messages: Sequence[dict], seed: int | None = None) -> str:  # pragma: no cover
        raise NotImplementedError

    def describe(self) -> dict:
        """Public, secret-free description written into summaries."""
        return {'type': type(self).__name__}


def call_with_retry(fn: Callable[[], str], max_retries: int = 3, backoff: float = 1.0,
                    backoff_factor: float = 2.0, max_backoff: float = 30.0,
                    sleep: Callable[[float], None] = time.sleep, logger: MMLogger | None = None,
                    what: str = 'llm call') -> str:
    """Run ``fn``; on a retryable :class:`LLMError` wait ``backoff * factor**k`` (capped) and try again.

    At most ``1 + max_retries`` attempts; the last error is re-raised. Non-retryable errors raise at once.
    """
    attempt = 0
    while True:
        try:
            return fn()
        except LLMError as e:
            if not e.retryable or attempt >= max_retries:
                raise
            delay = min(max_backoff, backoff * (backoff_factor**attempt))
            if logger is not None:
                logger.warning(f'{what}: {e.reason} (attempt {attempt + 1}/{max_retries + 1}); '
                               f'retrying in {delay:.2f}s')
            sleep(delay)
            attempt += 1
