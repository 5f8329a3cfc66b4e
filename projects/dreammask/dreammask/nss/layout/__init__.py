from .draw import draw_layout_png, layout_html, name_color
from .generators import LayoutResult, LLMLayoutGenerator, RuleBasedLayoutGenerator, sample_categories
from .paint_order import PAINT_ORDERS, paint_order
from .prompting import layout_messages, parse_layout_answer
from .schema import Layout, LayoutObject, LayoutValidationError, validate_objects

__all__ = [
    'Layout', 'LayoutObject', 'LayoutValidationError', 'validate_objects', 'layout_messages',
    'parse_layout_answer', 'layout_html', 'draw_layout_png', 'name_color', 'LayoutResult',
    'LLMLayoutGenerator', 'RuleBasedLayoutGenerator', 'sample_categories', 'PAINT_ORDERS', 'paint_order'
]
