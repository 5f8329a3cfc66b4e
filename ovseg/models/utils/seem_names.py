"""Official SEEM v1 checkpoint keys → ovseg keys, for the backbone, the pixel decoder and the language encoder.

SEEM's released ``seem_focal{l,t}_v1.pt`` are plain ``GeneralizedSEEM.state_dict()``s (SEEM v1.0
``modeling/BaseModel.py::save_pretrained``). ovseg's modules keep the official inner names, so these three parts convert
by prefix, with one rename inside the text transformer (open_clip nests the residual blocks under ``transformer``):

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

Everything else (the SEEM decoder ``sem_seg_head.predictor.*``, ``criterion.*``, buffers) is returned unmatched by
:func:`seem_backbone_pixel_lang_keys`; :func:`seem_to_ovseg_keys` (the full converter's map) also maps the decoder
(``sem_seg_head.predictor.*`` → ``transformer_decoder.*``) and sets aside the keys ignored by design. The target
prefixes are arguments, so the segmentor can name its parts otherwise.
"""
from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from typing import TypeVar

__all__ = ['SEEM_IGNORED_BY_DESIGN', 'SEEM_LANG_PREFIX', 'SEEM_PREDICTOR_PREFIX', 'seem_backbone_pixel_lang_keys',
           'seem_key_rules', 'seem_to_ovseg_keys']

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


#: where SEEM keeps the decoder (everything of it but ``lang_encoder.*``)
SEEM_PREDICTOR_PREFIX = 'sem_seg_head.predictor.'
#: official keys deliberately not converted: ``criterion.empty_weight`` (length NUM_CLASSES+1: it depends on the
#: training vocabulary; ovseg's criterion derives the no-object weight from the logits) and ``dilation_kernel``
#: (a 3×3 buffer of ones for the interactive click simulation, rebuilt by whoever needs it).
SEEM_IGNORED_BY_DESIGN = ('criterion.empty_weight', 'dilation_kernel')


def seem_to_ovseg_keys(state_dict: Mapping[str, V], backbone_prefix: str = 'backbone.',
                       pixel_decoder_prefix: str = 'pixel_decoder.', text_encoder_prefix: str = 'text_encoder.',
                       decoder_prefix: str = 'transformer_decoder.'
                       ) -> tuple[OrderedDict[str, V], list[str], list[str]]:
    """Every SEEM v1 key → ``(mapped, ignored_by_design, unmatched)``.

    :func:`seem_backbone_pixel_lang_keys` plus the decoder: ``sem_seg_head.predictor.<name>`` (not
    ``lang_encoder.*``) → ``<decoder_prefix><name>`` (``SEEMDecoder`` keeps the official inner names:
    ``transformer_*_layers``, ``query_feat``, ``class_embed``, ``mask_sptial_embed.i``, ``pn_indicator``, ...).
    ``ignored_by_design`` lists the present :data:`SEEM_IGNORED_BY_DESIGN` keys; ``unmatched`` the rest.
    """
    mapped, rest = seem_backbone_pixel_lang_keys(state_dict, backbone_prefix, pixel_decoder_prefix,
                                                 text_encoder_prefix)
    ignored, unmatched = [], []
    for key in rest:
        if key in SEEM_IGNORED_BY_DESIGN:
            ignored.append(key)
        elif key.startswith(SEEM_PREDICTOR_PREFIX) and not key.startswith(SEEM_LANG_PREFIX):
            new_key = decoder_prefix + key[len(SEEM_PREDICTOR_PREFIX):]
            if new_key in mapped:
                raise ValueError(f'two official keys map to {new_key!r}')
            mapped[new_key] = state_dict[key]
        else:
            unmatched.append(key)
    return mapped, ignored, unmatched
