# Tiny random SEEM for `tools/seem_demo.py --random-weights` smoke runs and tests (no weights are downloaded).
_base_ = ['./_base_/seem_tiny_model.py']
default_scope = 'ovseg'
