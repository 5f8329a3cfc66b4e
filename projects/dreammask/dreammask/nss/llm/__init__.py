from .base import LLMBackend, LLMBadResponse, LLMError, LLMRequestError, LLMServerError, LLMTimeout, call_with_retry
from .openai_compatible import OpenAICompatibleLLM
from .scripted import ScriptedLLM
from .transformers_local import TransformersLocalLLM

__all__ = [
    'LLMBackend', 'LLMError', 'LLMTimeout', 'LLMServerError', 'LLMRequestError', 'LLMBadResponse',
    'call_with_retry', 'OpenAICompatibleLLM', 'TransformersLocalLLM', 'ScriptedLLM'
]
