"""Registries of NSS components; configs pick a backend with ``type=...`` like any mmengine module."""
from mmengine.registry import Registry

LLMS = Registry('nss llm backend', scope='nss')
LAYOUT_GENERATORS = Registry('nss layout generator', scope='nss')
RENDERERS = Registry('nss layout-to-image renderer', scope='nss')
MASK_SCORERS = Registry('nss mask scorer', scope='nss')


def build(registry: Registry, cfg, **default_args):
    """Build ``cfg`` (dict with ``type``) or pass an already built object through."""
    if cfg is None or not isinstance(cfg, dict):
        return cfg
    cfg = dict(cfg)
    for k, v in default_args.items():
        cfg.setdefault(k, v)
    return registry.build(cfg)
