"""Use images made by an external layout-to-image tool (e.g. LayoutGPT) as ``real_XXXXX.png``."""
from __future__ import annotations

from pathlib import Path

from PIL import Image

from ..errors import require_path
from ..registry import RENDERERS
from .base import LayoutToImage, RenderError, to_rgb


@RENDERERS.register_module()
class ExternalImagesRenderer(LayoutToImage):
    """Reads ``image_dir/<pattern>`` (``{idx}`` = the scene's 5-digit number, default ``real_{idx}.png``);
    a missing image is a per-scene ``missing_image`` rejection."""

    def __init__(self, image_dir: str, pattern: str = 'real_{idx}.png', batch_size: int = 16):
        self.image_dir = require_path(image_dir, 'external image directory',
                                      'Run your layout-to-image tool on layouts_dataset/ first.', is_dir=True)
        self.pattern = pattern
        self.batch_size = batch_size

    def render_batch(self, layouts, seeds):
        out = []
        for lay in layouts:
            p = Path(self.image_dir) / self.pattern.format(idx=lay.scene_id.split('_')[-1],
                                                           scene_id=lay.scene_id)
            if not p.is_file():
                out.append(RenderError('missing_image', str(p)))
                continue
            with Image.open(p) as im:
                out.append(to_rgb(im.copy()))
        return out
