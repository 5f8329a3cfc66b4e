"""Sa2VA's language side, text half: tokenizers, special tokens, chat templates, prompt strings, and the
conversation → (input_ids, labels) encoding used for SFT.

Sources (stored snapshots of the official repositories):

* [v2] ``bytedance/Sa2VA`` @ 9832e1a: ``projects/sa2va/datasets/common.py`` (``SEG_QUESTIONS``,
  ``ANSWER_LIST``), ``datasets/base.py`` (``_process_conversations_for_encoding``), ``datasets/data_utils.py``
  (``template_map_fn``, ``tokenize_conversation``), ``hf/models/templates.py`` (= xtuner v0.1.23
  ``xtuner/utils/templates.py``), ``evaluation/dataset/RES.py`` (the RefCOCO evaluation question);
* [v1] ``magic-research/Sa2VA`` @ d01bf3f (an ancestor of [v2]): ``projects/glamm/datasets/utils/utils.py``
  (the older ``SEG_QUESTIONS``), ``projects/llava_sam2/models/internvl.py::_add_special_tokens``;
* xtuner's ``get_bos_eos_token_ids`` (``xtuner/dataset/utils.py``).
"""
from __future__ import annotations

import inspect
import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn

__all__ = [
    'IGNORE_INDEX', 'IMG_START_TOKEN', 'IMG_END_TOKEN', 'IMG_CONTEXT_TOKEN', 'IMAGE_PLACEHOLDER',
    'SA2VA_SPECIAL_TOKENS', 'IMAGE_TOKENS', 'CHAT_MARKERS', 'PROMPT_TEMPLATES', 'SEG_QUESTIONS', 'SEG_QUESTIONS_V1',
    'ANSWER_LIST', 'EVAL_SEG_QUESTION', 'build_toy_tokenizer', 'load_release_tokenizer', 'add_sa2va_tokens',
    'get_template', 'stop_token_ids', 'expand_image_tokens', 'encode_conversation', 'collate_conversations',
]

IGNORE_INDEX = -100  # xtuner.utils.IGNORE_INDEX; also torch's CrossEntropyLoss default ignore_index
IMG_START_TOKEN, IMG_END_TOKEN, IMG_CONTEXT_TOKEN = '<img>', '</img>', '<IMG_CONTEXT>'  # [v2] datasets/base.py
IMAGE_PLACEHOLDER = '<image>'  # xtuner DEFAULT_IMAGE_TOKEN, replaced before tokenisation
# [v1] internvl.py::_add_special_tokens / every config's ``special_tokens``, in this order
SA2VA_SPECIAL_TOKENS = ('[SEG]', '<p>', '</p>', '<vp>', '</vp>')
# Present in every InternVL2.5 / InternVL3 tokenizer (ids 151665..151667 there), added to others (the toy)
IMAGE_TOKENS = (IMG_START_TOKEN, IMG_END_TOKEN, IMG_CONTEXT_TOKEN)
_TOKEN_KEYS = dict(zip(SA2VA_SPECIAL_TOKENS + IMAGE_TOKENS,
                       ('seg', 'p_start', 'p_end', 'vp_start', 'vp_end', 'img_start', 'img_end', 'img_context')))
# Markers of the two chat templates below (qwen_chat first): special tokens of the toy tokenizer
CHAT_MARKERS = ('<|im_start|>', '<|im_end|>', '<|endoftext|>', '<|system|>', '<|user|>', '<|assistant|>', '<|end|>')

# xtuner v0.1.23 xtuner/utils/templates.py, copied verbatim into [v2] hf/models/templates.py. qwen_chat: every
# v2 config and v1 sa2va_1b; phi3_chat: v1 sa2va_4b (Sa2VA's configs).
PROMPT_TEMPLATES: dict[str, dict[str, Any]] = dict(
    qwen_chat=dict(
        SYSTEM='<|im_start|>system\n{system}<|im_end|>\n',
        INSTRUCTION='<|im_start|>user\n{input}<|im_end|>\n<|im_start|>assistant\n',
        SUFFIX='<|im_end|>', SUFFIX_AS_EOS=True, SEP='\n', STOP_WORDS=['<|im_end|>', '<|endoftext|>']),
    phi3_chat=dict(
        SYSTEM='<|system|>\n{system}<|end|>\n',
        INSTRUCTION='<|user|>\n{input}<|end|>\n<|assistant|>\n',
        SUFFIX='<|end|>', SUFFIX_AS_EOS=True, SEP='\n', STOP_WORDS=['<|end|>']),
)

# [v2] projects/sa2va/datasets/common.py (the "Glamm" lists; used by Sa2VA01RefSeg). Duplicates and the odd
# "mask?" endings are the source's: keep them, they set the sampling frequencies.
SEG_QUESTIONS = (
    "Can you segment the {class_name} in this image?",
    "Please segment {class_name} in this image.",
    "What is {class_name} in this image? Please respond with segmentation mask.",
    "What is {class_name} in this image? Please output segmentation mask.",

    "Can you segment the {class_name} in this image?",
    "Please segment {class_name} in this image.",
    "What is {class_name} in this image? Please respond with segmentation mask?",
    "What is {class_name} in this image? Please output segmentation mask?",

    "Could you provide a segmentation mask for the {class_name} in this image?",
    "Please identify and segment the {class_name} in this image.",
    "Where is the {class_name} in this picture? Please respond with a segmentation mask.",
    "Can you highlight the {class_name} in this image with a segmentation mask?",

    "Could you provide a segmentation mask for the {class_name} in this image?",
    "Please identify and segment the {class_name} in this image.",
    "Where is the {class_name} in this picture? Please respond with a segmentation mask.",
    "Can you highlight the {class_name} in this image with a segmentation mask?",
)
# [v1] projects/glamm/datasets/utils/utils.py: the same 16 slots, the 2nd and 4th groups without final punctuation
SEG_QUESTIONS_V1 = (
    "Can you segment the {class_name} in this image?",
    "Please segment {class_name} in this image.",
    "What is {class_name} in this image? Please respond with segmentation mask.",
    "What is {class_name} in this image? Please output segmentation mask.",

    "Can you segment the {class_name} in this image",
    "Please segment {class_name} in this image",
    "What is {class_name} in this image? Please respond with segmentation mask",
    "What is {class_name} in this image? Please output segmentation mask",

    "Could you provide a segmentation mask for the {class_name} in this image?",
    "Please identify and segment the {class_name} in this image.",
    "Where is the {class_name} in this picture? Please respond with a segmentation mask.",
    "Can you highlight the {class_name} in this image with a segmentation mask?",

    "Could you provide a segmentation mask for the {class_name} in this image",
    "Please identify and segment the {class_name} in this image",
    "Where is the {class_name} in this picture? Please respond with a segmentation mask",
    "Can you highlight the {class_name} in this image with a segmentation mask",
)
# [v2] datasets/common.py, identical in [v1] glamm utils.py
ANSWER_LIST = ("It is [SEG].", "Sure, [SEG].", "Sure, it is [SEG].", "Sure, the segmentation result is [SEG].",
               "[SEG].")
# [v2] evaluation/dataset/RES.py (``ret.append("<image>\n Please segment {} in this image.".format(sent))``):
# the space after the newline is the source's and is part of every reported RefCOCO number.
EVAL_SEG_QUESTION = '<image>\n Please segment {sent} in this image.'


# --------------------------------------------------------------------------------------------- tokenizers
def build_toy_tokenizer(words: Iterable[str], include_prompts: bool = True) -> Any:
    """An in-memory word-level ``PreTrainedTokenizerFast`` for CPU toys and tests (nothing downloaded).

    ``words`` are texts: they are split like the input (whitespace, then every punctuation character alone)
    and each piece becomes a token. ``include_prompts`` also adds the pieces of the templates' role words,
    ``SEG_QUESTIONS`` (both versions), ``ANSWER_LIST`` and ``EVAL_SEG_QUESTION``, so every Sa2VA prompt encodes
    without ``[UNK]``. Ids: ``[PAD]`` 0, ``[UNK]`` 1, then ``CHAT_MARKERS`` (special), then the pieces sorted.
    ``eos_token`` is ``<|im_end|>`` and there is no BOS, as Qwen2.5-Instruct's tokenizer.
    """
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    pre = pre_tokenizers.Sequence([pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Punctuation('isolated')])
    texts = [str(w) for w in words]
    if include_prompts:
        prompts = [*SEG_QUESTIONS, *SEG_QUESTIONS_V1, *ANSWER_LIST, EVAL_SEG_QUESTION]
        texts += ['system user assistant'] + [p.replace(IMAGE_PLACEHOLDER, ' ') for p in prompts]
    specials = ['[PAD]', '[UNK]', *CHAT_MARKERS]
    pieces = {p for text in texts for p, _ in pre.pre_tokenize_str(text)} - set(specials)
    vocab = {tok: i for i, tok in enumerate(specials + sorted(pieces))}
    if len(vocab) == len(specials):
        raise ValueError('build_toy_tokenizer: no words given and include_prompts=False (empty vocabulary)')
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token='[UNK]'))
    core.pre_tokenizer = pre
    tok = PreTrainedTokenizerFast(tokenizer_object=core, unk_token='[UNK]', pad_token='[PAD]', eos_token='<|im_end|>')
    tok.add_special_tokens({'additional_special_tokens': list(CHAT_MARKERS)})  # matched before pre-tokenising
    return tok


def load_release_tokenizer(folder: str | os.PathLike) -> Any:
    """``AutoTokenizer.from_pretrained`` on a local folder (a Sa2VA / InternVL release or a saved toy).

    Never remote code and never the Hub: ``trust_remote_code=False``, ``local_files_only=True``. A folder
    without tokenizer files is an error naming it (releases ship ``tokenizer.json`` or ``vocab.json`` +
    ``merges.txt`` next to ``tokenizer_config.json``).
    """
    from transformers import AutoTokenizer

    folder = os.fspath(folder)
    if not os.path.isdir(folder):
        raise FileNotFoundError(f'tokenizer folder {folder!r} does not exist')
    files = set(os.listdir(folder))
    found = files & {'tokenizer.json', 'vocab.json', 'tokenizer.model', 'vocab.txt'}
    if not found:
        raise FileNotFoundError(f'tokenizer folder {folder!r} has no tokenizer files (expected tokenizer.json, '
                                f'or vocab.json + merges.txt, or tokenizer.model); it holds {sorted(files)[:12]}')
    return AutoTokenizer.from_pretrained(folder, trust_remote_code=False, local_files_only=True)


def add_sa2va_tokens(tokenizer: Any, language_model: nn.Module | None = None) -> dict[str, int]:
    """Add ``<img> </img> <IMG_CONTEXT>`` (if absent) and ``[SEG] <p> </p> <vp> </vp>`` as special tokens, grow
    ``language_model``'s embeddings to cover them, and return the ids.

    Keys: ``seg, p_start, p_end, vp_start, vp_end, img_start, img_end, img_context``. Sa2VA adds its five with
    ``tokenizer.add_tokens(..., special_tokens=True)`` then ``resize_token_embeddings(len(tokenizer))`` ([v1]
    ``_add_special_tokens``); tokens already present (a release tokenizer) keep their ids and nothing changes.

    Rows of newly added ids (input embedding, and an untied ``lm_head``) are set to the mean of the rows of the
    ids that existed before. Why: a new token then starts as an "average" token, so its logit does not jump
    out and the model's next-token distribution barely moves (Hewitt, "Initializing new word embeddings",
    nlp.stanford.edu/~johnhew/vocab-expansion.html). transformers >= 4.46 does the random version by default
    (``mean_resizing=True``: rows sampled from N(mean, cov) of the old rows); the transformers Sa2VA used
    (4.42) drew them from N(0, initializer_range). The plain mean is deterministic and avoids the covariance
    of a 150k-row matrix. The matrix only grows (Qwen checkpoints carry spare rows past ``len(tokenizer)``:
    those rows are reused, never cut).
    """
    before = len(tokenizer)
    vocab = tokenizer.get_vocab()
    missing_img = [t for t in IMAGE_TOKENS if t not in vocab]
    if missing_img:
        tokenizer.add_tokens(missing_img, special_tokens=True)
    tokenizer.add_tokens(list(SA2VA_SPECIAL_TOKENS), special_tokens=True)
    ids = {key: tokenizer.convert_tokens_to_ids(tok) for tok, key in _TOKEN_KEYS.items()}
    unk = tokenizer.unk_token_id
    bad = [k for k, v in ids.items() if v is None or (unk is not None and v == unk)]
    if bad:
        raise RuntimeError(f'add_sa2va_tokens: tokens {bad} did not get their own id in {type(tokenizer).__name__}')
    new_ids = sorted(i for i in ids.values() if i >= before)
    if language_model is not None and new_ids:
        _grow_embeddings(language_model, len(tokenizer), before, new_ids)
    return ids


@torch.no_grad()
def _grow_embeddings(model: nn.Module, num_tokens: int, old_len: int, new_ids: Sequence[int]) -> None:
    inp = model.get_input_embeddings()
    out = model.get_output_embeddings()
    tied = out is not None and out.weight is inp.weight
    n_old = min(old_len, inp.weight.shape[0])  # rows of tokens that existed before (spare rows excluded)
    old_in = inp.weight[:n_old].float().mean(0)
    old_out = out.weight[:min(old_len, out.weight.shape[0])].float().mean(0) if out is not None and not tied else None
    if num_tokens > inp.weight.shape[0]:
        # mean_resizing=False (transformers >= 4.46): cheap placeholder init, no covariance; overwritten below
        params = inspect.signature(model.resize_token_embeddings).parameters
        model.resize_token_embeddings(num_tokens, **({'mean_resizing': False} if 'mean_resizing' in params else {}))
        inp, out = model.get_input_embeddings(), model.get_output_embeddings()
    idx = torch.as_tensor(list(new_ids), device=inp.weight.device)
    inp.weight[idx] = old_in.to(inp.weight.dtype)
    if old_out is not None:
        out.weight[idx] = old_out.to(out.weight.dtype)
        if getattr(out, 'bias', None) is not None:
            out.bias[idx] = out.bias[:n_old].float().mean().to(out.bias.dtype)


# ------------------------------------------------------------------------------------------------ templates
def get_template(template: str | Mapping[str, Any]) -> dict[str, Any]:
    """A template by name (``PROMPT_TEMPLATES``) or a dict with at least ``INSTRUCTION`` (xtuner's format)."""
    if isinstance(template, str):
        key = template.replace('-', '_')  # the HF config spells it 'phi3-chat' / 'qwen_chat' ([v1] hf code)
        if key not in PROMPT_TEMPLATES:
            raise ValueError(f'unknown chat template {template!r}; known: {sorted(PROMPT_TEMPLATES)} '
                             '(internlm2_chat, for Sa2VA-8B/26B, is out of scope)')
        return dict(PROMPT_TEMPLATES[key])
    if '{input}' not in template.get('INSTRUCTION', ''):
        raise ValueError("a chat template dict needs an 'INSTRUCTION' containing '{input}'")
    return dict(template)


def stop_token_ids(tokenizer: Any, template: str | Mapping[str, Any] = 'qwen_chat') -> list[int]:
    """Ids that end generation: the template's ``STOP_WORDS`` that are single tokens, plus ``eos_token_id``
    (the HF ``predict_forward`` stops on both: ``eos_token_id`` in the generation config, stop words by a
    criterion). A multi-token stop word is an error: greedy decoding here stops on ids only."""
    ids = [] if tokenizer.eos_token_id is None else [int(tokenizer.eos_token_id)]
    for word in get_template(template).get('STOP_WORDS', []):
        enc = tokenizer.encode(word, add_special_tokens=False)
        if len(enc) != 1 or enc[0] == tokenizer.unk_token_id:
            raise ValueError(f'stop word {word!r} is not one token of {type(tokenizer).__name__} (got {enc})')
        if enc[0] not in ids:
            ids.append(enc[0])
    return ids


def expand_image_tokens(text: str, num_image_tokens: int, num_frames: int = 1) -> str:
    """Replace the one ``<image>`` in ``text`` by ``<img>`` + ``<IMG_CONTEXT>`` × N + ``</img>``.

    ``num_image_tokens`` is per frame (tiles · 256 for an image). Video: the block is repeated per frame, joined
    by ``\\n`` ([v2] ``base.py::_create_token_string``; HF ``predict_forward``).
    """
    if num_image_tokens < 1 or num_frames < 1:
        raise ValueError(f'num_image_tokens and num_frames must be >= 1, got {num_image_tokens}, {num_frames}')
    count = text.count(IMAGE_PLACEHOLDER)
    if count != 1:
        raise ValueError(f'expected exactly one {IMAGE_PLACEHOLDER!r} in the text, found {count}: {text[:80]!r}')
    block = f'{IMG_START_TOKEN}{IMG_CONTEXT_TOKEN * num_image_tokens}{IMG_END_TOKEN}'
    return text.replace(IMAGE_PLACEHOLDER, '\n'.join([block] * num_frames))


# ----------------------------------------------------------------------------------------------- encoding
def _bos_ids(tokenizer: Any) -> list[int]:
    """xtuner ``get_bos_eos_token_ids``: Qwen tokenizers get no BOS (their ``bos_token`` is None anyway)."""
    if type(tokenizer).__name__ in ('QWenTokenizer', 'QWen2Tokenizer', 'Qwen2Tokenizer', 'Qwen2TokenizerFast'):
        return []
    return [] if tokenizer.bos_token_id is None else [int(tokenizer.bos_token_id)]


def encode_conversation(tokenizer: Any, turns: Sequence[tuple[str, str]], template: str | Mapping[str, Any] =
                        'qwen_chat', num_image_tokens: int | None = None, max_length: int = 8192,
                        num_frames: int = 1, system: str = '') -> dict[str, Tensor]:
    """Tokenise a (multi-turn) conversation as Sa2VA's SFT data: labels supervise only the answers.

    Per turn ``(question, answer)`` ([v2] ``base.py::_process_conversations_for_encoding`` +
    ``data_utils.py::template_map_fn`` / ``tokenize_conversation``, = xtuner's ``encode_fn``):

    * only the first question may hold ``<image>``; with ``num_image_tokens`` it becomes the image block
      (``expand_image_tokens``) and the question is stripped, without it ``<image>`` is removed;
    * input = BOS (first turn, if the tokenizer has one) + ``INSTRUCTION.format(input=question)`` (with
      ``SYSTEM`` in front on the first turn when ``system`` is given), labels ``IGNORE_INDEX``;
    * output = ``answer.strip() + SUFFIX``, supervised (the SUFFIX ``<|im_end|>`` is how the model learns to stop);
      EOS (supervised) only if the template has no ``SUFFIX_AS_EOS``; then ``SEP`` unsupervised.

    Truncation to ``max_length`` cuts the tail as xtuner does, but never inside the image block: a conversation
    whose image block does not fit raises. Turns cut away take their ``[SEG]`` tokens with them, so match masks
    to ``(input_ids == seg_id)`` of the result. Returns 1-D ``input_ids``, ``labels`` (long) and
    ``attention_mask`` (ones, long).
    """
    tpl = get_template(template)
    if not turns:
        raise ValueError('encode_conversation: no turns')
    if max_length < 1:
        raise ValueError(f'max_length must be >= 1, got {max_length}')
    input_ids: list[int] = []
    labels: list[int] = []
    bos = _bos_ids(tokenizer)
    need_bos = True
    for i, turn in enumerate(turns):
        if len(turn) != 2:
            raise ValueError(f'turn {i}: expected (question, answer), got {len(turn)} items')
        question, answer = str(turn[0]), str(turn[1])
        if IMAGE_PLACEHOLDER in question:
            if i > 0:
                raise ValueError(f'turn {i}: {IMAGE_PLACEHOLDER!r} is only allowed in the first question '
                                 '(Sa2VA puts the image in the first turn)')
            if num_image_tokens is None:
                question = question.replace(IMAGE_PLACEHOLDER, '')
            else:
                question = expand_image_tokens(question, num_image_tokens, num_frames).strip()
        elif i == 0 and num_image_tokens is not None:
            raise ValueError(f'num_image_tokens={num_image_tokens} but the first question has no '
                             f'{IMAGE_PLACEHOLDER!r}: {question[:80]!r}')
        text = tpl['INSTRUCTION'].format(input=question, round=i + 1)
        if i == 0 and system:
            text = tpl['SYSTEM'].format(system=system) + text
        enc_in = tokenizer.encode(text, add_special_tokens=False)
        if need_bos:
            input_ids += bos
            labels += [IGNORE_INDEX] * len(bos)
        input_ids += enc_in
        labels += [IGNORE_INDEX] * len(enc_in)
        enc_out = tokenizer.encode(answer.strip() + tpl.get('SUFFIX', ''), add_special_tokens=False)
        input_ids += enc_out
        labels += enc_out
        need_bos = not tpl.get('SUFFIX_AS_EOS', False)  # xtuner: need_eos_token = not SUFFIX_AS_EOS
        if need_bos and tokenizer.eos_token_id is not None:
            input_ids.append(int(tokenizer.eos_token_id))
            labels.append(int(tokenizer.eos_token_id))
        if tpl.get('SEP', ''):
            enc_sep = tokenizer.encode(tpl['SEP'], add_special_tokens=False)
            input_ids += enc_sep
            labels += [IGNORE_INDEX] * len(enc_sep)
    if len(input_ids) > max_length:
        end_id = tokenizer.convert_tokens_to_ids(IMG_END_TOKEN) if num_image_tokens is not None else None
        if end_id is not None and end_id in input_ids:
            last_end = len(input_ids) - 1 - input_ids[::-1].index(end_id)
            if last_end >= max_length:
                raise ValueError(f'encode_conversation: the image block ends at token {last_end + 1} but '
                                 f'max_length is {max_length}; raise max_length or use fewer tiles')
        input_ids, labels = input_ids[:max_length], labels[:max_length]
    ids = torch.tensor(input_ids, dtype=torch.long)
    return dict(input_ids=ids, labels=torch.tensor(labels, dtype=torch.long), attention_mask=torch.ones_like(ids))


def collate_conversations(items: Sequence[Mapping[str, Any]], pad_token_id: int) -> dict[str, Any]:
    """Right-pad ``encode_conversation`` outputs into a batch: ``input_ids`` with ``pad_token_id``, ``labels``
    with ``IGNORE_INDEX``, ``attention_mask`` with 0 (as [v2] ``sa2va_collect_fn``, which builds the mask from
    the lengths because pad and EOS may share an id). Other keys are gathered into lists."""
    if not items:
        raise ValueError('collate_conversations: empty batch')
    keys = ('input_ids', 'labels', 'attention_mask')
    for i, item in enumerate(items):
        missing = [k for k in keys if k not in item]
        if missing:
            raise KeyError(f'collate_conversations: item {i} lacks {missing}')
        lens = {k: int(item[k].shape[-1]) for k in keys}
        if len(set(lens.values())) != 1 or item['input_ids'].dim() != 1:
            raise ValueError(f'collate_conversations: item {i} needs 1-D tensors of one length, got {lens}')
    length = max(int(it['input_ids'].shape[0]) for it in items)
    batch = dict(input_ids=torch.full((len(items), length), int(pad_token_id), dtype=torch.long),
                 labels=torch.full((len(items), length), IGNORE_INDEX, dtype=torch.long),
                 attention_mask=torch.zeros((len(items), length), dtype=torch.long))
    for i, it in enumerate(items):
        n = int(it['input_ids'].shape[0])
        batch['input_ids'][i, :n] = it['input_ids']
        batch['labels'][i, :n] = it['labels']
        batch['attention_mask'][i, :n] = it['attention_mask']
    for key in sorted({k for it in items for k in it} - set(keys)):
        batch[key] = [it.get(key) for it in items]
    return batch
