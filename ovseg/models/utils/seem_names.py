"""Official SEEM v1 checkpoint keys → ovseg keys, for the backbone, the pixel decoder and the language encoder.

SEEM's released ``seem_focal{l,t}_v1.pt`` are plain ``GeneralizedSEEM.state_dict()``s (``shared/reference/seem.md``
§2.4). ovseg's modules keep the official inner names, so these three parts convert by prefix, with one rename
inside the text transformer (open_clip nests the residual blocks under ``transformer``):

=========================================================  =====================================================
official                                                   ovseg
=========================================================  =====================================================
``backbone.*``                                             ``backbone.*`` (:class:`FocalNet`)
``sem_seg_head.pixel_decoder.*``                           ``pixel_decoder.*`` (:class:`TransformerEncoderPixel
                                                           Decoder`)
``sem_seg_head.predictor.lang_encoder.lang_encoder.        ``text_encoder.lang_encoder.transformer.resblocks.*``
resblocks.*``
``sem_seg_head.predictor.lang_encoder.*`` (the rest:       ``text_encoder.*`` (:class:`SEEMLanguageEncoder`)
``lang_encoder.{token_embedding,positional_embedding,
ln_final}``, ``lang_proj``, ``logit_scale``)
=========================================================  =====================================================

Everything else (the SEEM decoder ``sem_seg_head.predictor.*``, ``criterion.*``, buffers) is returned unmatched for
the full converter to handle. The target prefixes are arguments, so the segmentor can name its parts otherwise.
"""
from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from typing import TypeVar

__all__ = ['SEEM_LANG_PREFIX', 'seem_backbone_pixel_lang_keys', 'seem_key_rules']

V = TypeVar('V')

#: where SEEM keeps the language encoder
SEEM_LANG_PREFIX = 'sem_seg_head.predictor.lang_encoder.'


def seem_key_rules(backbone_prefix: str = 'backbone.', pixel_decoder_prefix: str = 'pixel_decoder.',
                   text_encoder_prefix: str = 'text_encoder.') -> tuple[tuple[str, str], ...]:
    """(official prefix, ovseg prefix) rules, most specific first (the first match wins)."""
    return (
        (SEEM_LANG_PREFIX + 'lang_encoder.resblocks.', text_encoder_prefix + 'lang_encoder.transformer.resblocks.'),
        (SEEM_LANG_PREFIX, text_encoder_prefix),
        ('sem_seg_head.pixel_decoder.', pixel_decoder_prefix),
        ('backbone.', backbone_prefix),
    )


def seem_backbone_pixel_lang_keys(state_dict: Mapping[str, V], backbone_prefix: str = 'backbone.',
                                  pixel_decoder_prefix: str = 'pixel_decoder.',
                                  text_encoder_prefix: str = 'text_encoder.'
                                  ) -> tuple[OrderedDict[str, V], list[str]]:
    """Rename SEEM's backbone / pixel-decoder / language-encoder keys → ``(mapped, unmatched)``.

    ``mapped`` holds the renamed entries (values untouched, in input order); ``unmatched`` lists the official keys
    none of the rules covers. A pure function: nothing is loaded or copied.
    """
    rules = seem_key_rules(backbone_prefix, pixel_decoder_prefix, text_encoder_prefix)
    mapped: OrderedDict[str, V] = OrderedDict()
    unmatched: list[str] = []
    for key, value in state_dict.items():
        for old, new in rules:
            if key.startswith(old):
                new_key = new + key[len(old):]
                if new_key in mapped:
                    raise ValueError(f'two official keys map to {new_key!r}')
                mapped[new_key] = value
                break
        else:
            unmatched.append(key)
    return mapped, unmatched
