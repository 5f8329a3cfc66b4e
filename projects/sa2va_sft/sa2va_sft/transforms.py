"""Pipeline steps that turn a referring sample (image + N expressions + N masks) into Sa2VA's inputs.

* :class:`FormatSa2VAInputs`: the image twice — InternVL tiles for the MLLM (dynamic tiling, 448², ImageNet
  normalisation) and a plain resize to SAM2's input size for the grounding encoder (Sa2VA's ``DirectResize(1024)``,
  no aspect ratio kept; the model normalises it) — and the expressions as conversation turns: in training one
  question per expression drawn from Sa2VA's ``SEG_QUESTIONS`` with an answer from ``ANSWER_LIST`` (each answer
  holds one ``[SEG]``), ``<image>`` in the first question only (a multi-turn dialogue, as Sa2VA's RefCOCO set); at
  test time one evaluation question per expression (``"<image>\\n Please segment {sent} in this image."``,
  Sa2VA's ``RES.py``), answered by generation.
* :class:`PackSa2VAInputs`: ``inputs = dict(tiles, sam)``, the ``SegDataSample`` of :class:`PackReferringInputs`
  (``gt_masks`` at the original size, expressions) plus the turns in metainfo.

Question and answer draws use ``np.random``, which ovseg's samplers seed per sample (exact resume).
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from mmcv.transforms import BaseTransform
from PIL import Image

from ovseg.datasets.referring import PackReferringInputs
from ovseg.registry import TRANSFORMS

from .image_tiling import preprocess_image
from .language import ANSWER_LIST, EVAL_SEG_QUESTION, SEG_QUESTIONS


def sam2_input(image: np.ndarray, size: int = 1024) -> torch.Tensor:
    """RGB uint8 H×W×3 → uint8 3×size×size: Sa2VA's ``DirectResize`` (``to_pil_image(image).resize((S, S))``, PIL's
    bicubic, aspect ratio not kept). The model normalises it (ImageNet mean/std, ``SAM2GroundingEncoder``); uint8
    keeps the batch 4× smaller in the dataloader."""
    resized = np.asarray(Image.fromarray(image, mode='RGB').resize((size, size), Image.BICUBIC))
    return torch.from_numpy(np.ascontiguousarray(resized.transpose(2, 0, 1)))


def referring_turns(expressions: Sequence[str], train: bool, rng: Any = np.random) -> list[tuple[str, str | None]]:
    """Conversation turns for N expressions: ``(question, answer)``; answers are ``None`` at test time."""
    turns: list[tuple[str, str | None]] = []
    for i, expr in enumerate(expressions):
        if train:
            question = SEG_QUESTIONS[rng.randint(len(SEG_QUESTIONS))].format(class_name=expr)
            question = ('<image>\n' + question) if i == 0 else question
            turns.append((question, ANSWER_LIST[rng.randint(len(ANSWER_LIST))]))
        else:
            turns.append((EVAL_SEG_QUESTION.format(sent=expr), None))
    return turns


@TRANSFORMS.register_module()
class FormatSa2VAInputs(BaseTransform):
    """InternVL tiles + SAM2 input from ``img``; conversation turns from ``expressions`` (see the module docstring).

    Args:
        image_size / min_num / max_num / use_thumbnail: InternVL dynamic tiling (448, 1, 12, True: Sa2VA's
            ``predict_forward`` values).
        sam_image_size: the grounding encoder's input size (1024 for SAM2-L; the tiny toy SAM2 uses 256).
        train: draw training questions and answers; ``None``: follow the dataset's ``test_mode`` is not visible
            here, so configs set it explicitly (train pipeline True, test pipeline False).
    """

    def __init__(self, image_size: int = 448, min_num: int = 1, max_num: int = 12, use_thumbnail: bool = True,
                 sam_image_size: int = 1024, train: bool = True) -> None:
        self.image_size, self.min_num, self.max_num = int(image_size), int(min_num), int(max_num)
        self.use_thumbnail, self.sam_image_size, self.train = bool(use_thumbnail), int(sam_image_size), bool(train)

    def transform(self, results: dict) -> dict:
        img = results['img']
        if img.ndim != 3 or img.shape[2] != 3:
            raise ValueError(f"FormatSa2VAInputs: '{results.get('img_path')}' is not an RGB image ({img.shape})")
        tiles, _ = preprocess_image(Image.fromarray(img), self.min_num, self.max_num, self.image_size,
                                    self.use_thumbnail)
        results['sa2va_tiles'] = tiles
        results['sa2va_sam'] = sam2_input(img, self.sam_image_size)
        expressions = list(results.get('expressions') or [])
        if not expressions:
            raise ValueError(f"FormatSa2VAInputs: sample '{results.get('img_path')}' has no expressions")
        results['conversation'] = referring_turns(expressions, self.train)
        return results

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(image_size={self.image_size}, max_num={self.max_num}, '
                f'sam_image_size={self.sam_image_size}, train={self.train})')


@TRANSFORMS.register_module()
class PackSa2VAInputs(PackReferringInputs):
    """``inputs = dict(tiles=(T,3,S,S), sam=(3,s,s))``; the data sample as :class:`PackReferringInputs` plus
    ``conversation`` in metainfo."""

    def __init__(self, extra_meta_keys: Sequence[str] = ('conversation',), **kwargs: Any) -> None:
        super().__init__(extra_meta_keys=extra_meta_keys, **kwargs)

    def transform(self, results: dict) -> dict:
        for key in ('sa2va_tiles', 'sa2va_sam'):
            if key not in results:
                raise KeyError(f'PackSa2VAInputs: results has no {key!r} (add FormatSa2VAInputs first)')
        packed = super().transform(results)
        packed['inputs'] = dict(tiles=results['sa2va_tiles'], sam=results['sa2va_sam'])
        return packed
