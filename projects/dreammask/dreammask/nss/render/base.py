"""Layout-to-image interface. Plug another model by registering a subclass in ``RENDERERS``."""
from __future__ import annotations

from collections.abc import Sequence

from PIL import Image

from ..layout.schema import Layout


class RenderError(RuntimeError):

    def __init__(self, reason: str, detail: str = ''):
        self.reason = reason
        super().__init__(f'{reason}: {detail}' if detail else reason)


class LayoutToImage:
    """``render_batch(layouts, seeds) -> list[PIL.Image | RenderError]``, one entry per layout.

    ``batch_size`` layouts are passed per call. An image of a size other than the layout canvas is resized to
    the canvas by the pipeline (boxes are in canvas pixels). Returning a :class:`RenderError` for one layout
    records a rejection for that scene without stopping the run.
    """

    batch_size: int = 1

    def render_batch(self, layouts: Sequence[Layout], seeds: Sequence[int]) -> list:  # pragma: no cover
        raise NotImplementedError

    def describe(self) -> dict:
        return {'type': type(self).__name__}


def to_rgb(img) -> Image.Image:
    return img if img.mode == 'RGB' else img.convert('RGB')
