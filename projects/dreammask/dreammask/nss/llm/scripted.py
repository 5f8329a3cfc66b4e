"""An offline backend that replays canned answers (tests, and offline toy runs)."""
from __future__ import annotations

from collections.abc import Sequence

from ..registry import LLMS
from .base import LLMBackend, LLMError


@LLMS.register_module()
class ScriptedLLM(LLMBackend):
    """Answers with ``responses[i % len(responses)]`` for the i-th call (or ``responses_by_seed[seed]``
    when given). A response that is an exception *instance* or an ``{'error': reason}`` dict raises
    :class:`LLMError` with that reason instead, to script failures. Not a language model: it exists so the
    CNA/layout stages can run fully offline and deterministically.
    """

    def __init__(self, responses: Sequence = (), responses_by_seed: dict | None = None):
        self.responses = list(responses)
        self.responses_by_seed = dict(responses_by_seed or {})
        self.calls: list = []

    def chat(self, messages, seed=None) -> str:
        i = len(self.calls)
        self.calls.append({'messages': list(messages), 'seed': seed})
        if seed is not None and seed in self.responses_by_seed:
            r = self.responses_by_seed[seed]
        elif self.responses:
            r = self.responses[i % len(self.responses)]
        else:
            raise LLMError('llm_no_script', 'ScriptedLLM has no responses')
        if isinstance(r, BaseException):
            raise r
        if isinstance(r, dict) and 'error' in r:
            raise LLMError(str(r['error']))
        return str(r)
