"""Keep credentials out of everything the NSS pipeline writes (answers, states, summaries, logs).

NSS stores raw LLM answers for auditing; a misconfigured or hostile server can echo the request headers,
API key included, into its answer. Every writer in :mod:`.io` and the pipeline's log handlers pass text
through :func:`redact`, which replaces the registered secrets (the API key an LLM client read from its
environment variable) and anything shaped like an ``Authorization: Bearer <token>`` value.
"""
from __future__ import annotations

import logging
import re
from typing import Any

__all__ = ['register_secret', 'redact', 'redact_obj', 'RedactingFilter', 'MASK']

MASK = '***'
_MIN_SECRET_LEN = 6  # shorter strings would mask ordinary words
_secrets: set[str] = set()
_BEARER = re.compile(r'(?i)\b(bearer)(\s+|%20|\\u0020)([A-Za-z0-9._~+/=-]{8,})')


def register_secret(value: str | None) -> None:
    """Mask ``value`` in everything written from now on (idempotent; short or empty values are ignored)."""
    if value and len(value) >= _MIN_SECRET_LEN:
        _secrets.add(value)


def redact(text: str) -> str:
    for secret in sorted(_secrets, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, MASK)
    return _BEARER.sub(lambda m: f'{m.group(1)}{m.group(2)}{MASK}', text)


def redact_obj(obj: Any) -> Any:
    """``obj`` with :func:`redact` applied to every string (keys included) of nested dicts / lists."""
    if isinstance(obj, str):
        return redact(obj)
    if isinstance(obj, dict):
        return {redact_obj(k): redact_obj(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(redact_obj(v) for v in obj)
    return obj


class RedactingFilter(logging.Filter):
    """Logging filter that redacts the formatted message (attach to handlers that write files)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, ()
        return True
