"""A local Hugging Face causal LM (e.g. Llama/Qwen/Mistral instruct) loaded from a directory, offline."""
from __future__ import annotations

from collections.abc import Sequence

from ..errors import require_path
from ..registry import LLMS
from .base import LLMBackend, LLMError


@LLMS.register_module()
class TransformersLocalLLM(LLMBackend):
    """Args:
        model_path: local directory with ``config.json``, weights and tokenizer files
            (e.g. from ``huggingface-cli download Qwen/Qwen2.5-7B-Instruct --local-dir <dir>``).
        device: ``'auto'`` (cuda when available), ``'cpu'``, ``'cuda:0'`` ...
        torch_dtype: ``'auto'``, ``'float16'``, ``'bfloat16'``, ``'float32'``.
        max_new_tokens, temperature, top_p: generation settings; ``temperature <= 0`` means greedy.
    Chat messages are rendered with the tokenizer's chat template when it has one, else as
    ``"<role>: <content>"`` lines followed by ``"assistant:"``.
    """

    def __init__(self, model_path: str, device: str = 'auto', torch_dtype: str = 'auto',
                 max_new_tokens: int = 1024, temperature: float = 0.7, top_p: float = 0.95):
        require_path(
            model_path, 'TransformersLocalLLM model directory',
            'Download an instruct model once with `huggingface-cli download <repo> --local-dir '
            '<dir>` on a machine with internet and set llm.model_path to <dir>.', is_dir=True)
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer
        self.model_path = str(model_path)
        if device == 'auto':
            device = 'cuda' if torch.cuda.is_available() else 'cpu'
        self.device = device
        dtype = torch_dtype if torch_dtype == 'auto' else getattr(torch, torch_dtype)
        self.tokenizer = AutoTokenizer.from_pretrained(self.model_path, local_files_only=True)
        self.model = AutoModelForCausalLM.from_pretrained(self.model_path, local_files_only=True, dtype=dtype)
        self.model.to(device).eval()
        self.max_new_tokens = max_new_tokens
        self.temperature = temperature
        self.top_p = top_p

    def describe(self) -> dict:
        return {'type': type(self).__name__, 'model_path': self.model_path, 'temperature': self.temperature}

    def _prompt(self, messages) -> str:
        if getattr(self.tokenizer, 'chat_template', None):
            return self.tokenizer.apply_chat_template(list(messages), tokenize=False,
                                                      add_generation_prompt=True)
        return '\n'.join(f"{m['role']}: {m['content']}" for m in messages) + '\nassistant:'

    def chat(self, messages: Sequence[dict], seed: int | None = None) -> str:
        import torch
        try:
            enc = self.tokenizer(self._prompt(messages), return_tensors='pt').to(self.device)
            gen = dict(max_new_tokens=self.max_new_tokens)
            if self.temperature and self.temperature > 0:
                gen.update(do_sample=True, temperature=self.temperature, top_p=self.top_p)
            else:
                gen.update(do_sample=False)
            if self.tokenizer.pad_token_id is None and self.tokenizer.eos_token_id is not None:
                gen['pad_token_id'] = self.tokenizer.eos_token_id
            if seed is not None:
                torch.manual_seed(int(seed))
            with torch.no_grad():
                out = self.model.generate(**enc, **gen)
            new = out[0, enc['input_ids'].shape[1]:]
            return self.tokenizer.decode(new, skip_special_tokens=True)
        except LLMError:
            raise
        except Exception as e:  # a generation failure is one bad item, not a dead run
            raise LLMError('llm_generation_error', f'{type(e).__name__}: {e}') from None
