"""Layout visualisation: the HTML page (same markup the LLM is asked for) and a drawn PNG."""
from __future__ import annotations

import colorsys
import hashlib
import html

from PIL import Image, ImageDraw

from .paint_order import paint_order
from .schema import Layout


def name_color(name: str, seed: int = 0) -> tuple[int, int, int]:
    """A stable, saturated colour for a category name (same name, same seed -> same colour)."""
    h = hashlib.sha256(f'{seed}:{name}'.encode()).digest()
    hue = h[0] / 255.0
    sat = 0.55 + 0.4 * h[1] / 255.0
    val = 0.6 + 0.35 * h[2] / 255.0
    r, g, b = colorsys.hsv_to_rgb(hue, sat, val)
    return int(r * 255), int(g * 255), int(b * 255)


def layout_html(layout: Layout, palette_seed: int = 0) -> str:
    lines = [
        '<!DOCTYPE html>', '<html><head><meta charset="utf-8">',
        f'<title>{html.escape(layout.scene_id)}</title>', '<style>',
        '.canvas{position:relative;border:1px solid #333;background:#fafafa;font:11px sans-serif}',
        '.object{position:absolute;box-sizing:border-box;border:2px solid;overflow:hidden}', '</style>',
        '</head><body>', f'<div class="canvas" style="position:relative; width:{layout.canvas_width}px; '
        f'height:{layout.canvas_height}px;">'
    ]
    for o in layout.objects:
        r, g, b = name_color(o.name, palette_seed)
        lines.append(f'  <div class="object" data-name="{html.escape(o.name, quote=True)}" '
                     f'style="position:absolute; left:{o.x}px; top:{o.y}px; width:{o.w}px; height:{o.h}px; '
                     f'border-color:rgb({r},{g},{b}); background:rgba({r},{g},{b},0.25);">'
                     f'{html.escape(o.name)}</div>')
    lines += ['</div>', '</body></html>', '']
    return '\n'.join(lines)


def draw_layout_png(layout: Layout, palette_seed: int = 0, order: str = 'area') -> Image.Image:
    """Filled translucent boxes with outlines and labels, back to front (``order``: see ``paint_order``)."""
    img = Image.new('RGBA', (layout.canvas_width, layout.canvas_height), (250, 250, 250, 255))
    lw = max(1, layout.canvas_width // 256)
    for i in paint_order([o.w * o.h for o in layout.objects], order):
        o = layout.objects[i]
        col = name_color(o.name, palette_seed)
        over = Image.new('RGBA', img.size, (0, 0, 0, 0))
        d = ImageDraw.Draw(over)
        x0, y0, x1, y1 = o.xyxy()
        d.rectangle([x0, y0, x1 - 1, y1 - 1], fill=col + (70, ), outline=col + (255, ), width=lw)
        d.text((x0 + 2 * lw, y0 + lw), o.name, fill=(0, 0, 0, 255))
        img = Image.alpha_composite(img, over)
    return img.convert('RGB')
