"""The one form of a pixel decoder's input description: ``{name: dict(channels=C, stride=S)}``."""
from __future__ import annotations

from collections.abc import Mapping, Sequence


def resolve_input_shape(input_shape: Mapping[str, Mapping[str, int]] | None,
                        in_channels: Mapping[str, int] | Sequence[int] | None,
                        strides: Mapping[str, int] | Sequence[int]) -> dict[str, dict[str, int]]:
    """``{name: dict(channels, stride)}`` from either ``input_shape`` or ``in_channels`` (+ ``strides``).

    ``in_channels`` is ``{name: C}`` or a list for res2.. in order; ``strides`` likewise (a mapping or a list).
    Exactly one of ``input_shape`` / ``in_channels`` must be given.
    """
    if (input_shape is None) == (in_channels is None):
        raise ValueError('give exactly one of input_shape or in_channels')
    if input_shape is not None:
        return {k: dict(channels=int(v['channels']), stride=int(v['stride'])) for k, v in input_shape.items()}
    names = (list(in_channels) if isinstance(in_channels, Mapping)
             else [f'res{i + 2}' for i in range(len(in_channels))])
    chans = [in_channels[k] for k in names] if isinstance(in_channels, Mapping) else list(in_channels)
    strs = [strides[k] for k in names] if isinstance(strides, Mapping) else list(strides)
    if len(strs) != len(chans):
        raise ValueError(f'{len(chans)} in_channels but {len(strs)} strides')
    return {k: dict(channels=int(c), stride=int(s)) for k, c, s in zip(names, chans, strs)}
