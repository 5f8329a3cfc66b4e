from .base import LayoutToImage, RenderError
from .external import ExternalImagesRenderer
from .gligen import GLIGENRenderer
from .procedural import ProceduralRenderer, visible_masks

__all__ = [
    'LayoutToImage', 'RenderError', 'ProceduralRenderer', 'GLIGENRenderer', 'ExternalImagesRenderer',
    'visible_masks'
]
