"""SEEM fine-tuning strategies (issue 11): which parameters train, expressed with the core ``peft`` /
``trainable_params`` config keys (``configs/seem_ft/_base_/strategy_*.py``), and the helpers that count them.

Four strategies = {frozen backbone, backbone adapters} × {decoder adapters, full decoder}, the strategies of the public
SEEM fine-tuning fork (FORK-A: ``msdkarimi/Segment-Everything-Everywhere-All-At-Once@fine-tune``), plus LoRA variants.
In every one the language encoder and the pixel decoder stay frozen (SEEM
``SOLVER.FIX_PARAM.{lang_encoder,pixel_decoder}`` True, the official default), and so do the decoder's spatial
(interactive) parameters, which only spatial training gives a gradient (off in these recipes; the ``-spatial``
configs switch it on and train them).

* **Decoder adapters** (:class:`SEEMDecoderAdapters`, a ``peft`` entry): a serial bottleneck ``d → d/2 → d``
  (ReLU, zero-initialised up-projection) on the output of the cross-attention, self-attention and FFN layer of
  every decoder layer (FORK-A ``seem_v1.py``: after each of the three, all 9 layers), and one *parallel* adapter
  beside the mask head: ``mask_embed(x) + A(x)``, ``hidden → hidden/2 → mask_dim`` (FORK-A adds its mask adapter
  output to ``mask_embed``). Built from the core :class:`~ovseg.models.peft.BottleneckAdapters` with the widths read
  from the model, so one config fragment serves the tiny, Focal-T and Focal-L models.
* **Backbone adapters** (plain core ``BottleneckAdapters`` entry in the configs): one serial bottleneck per FocalNet
  block on the output of its focal modulation (``blocks.i.modulation.proj``), ``C → C/4 → C``. FORK-A inserts its
  adapter "after ``modulation`` in every ``FocalModulationBlock``" (``bb_adopter.py``); placing it there (inside
  the block's layer-scale and residual) keeps each block equal to the pretrained one at initialisation and lets the
  width be read from the ``proj`` Linear of every stage.

Every added module lives in an ``adapters`` container (names ``...adapters.default.{down,up}.*``), never colliding
with the pixel decoder's official ``adapter_1..3`` lateral convs. Adapters train because the runner applies
``peft`` and ``trainable_params`` *before* it builds the optimizer from ``requires_grad`` (FORK-A set its backbone
adapters trainable after its optimizer was built, so they never trained).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from ovseg.models.peft import BottleneckAdapters, configure_trainable, parameter_table
from ovseg.registry import PEFT_WRAPPERS

__all__ = ['SEEMDecoderAdapters', 'DECODER_LAYER_GROUPS', 'SPATIAL_PARAMS', 'strategy_summary',
           'count_trainable']

#: decoder layer lists an adapter can follow (FORK-A: all three).
DECODER_LAYER_GROUPS = dict(cross='transformer_cross_attention_layers', self='transformer_self_attention_layers',
                            ffn='transformer_ffn_layers')
#: the decoder's spatial-only parameters (regex over model parameter names): no gradient without spatial training.
SPATIAL_PARAMS = r'^transformer_decoder\.(mask_sptial_embed|spatial_embed|spatial_featured|pn_indicator)\.'


@PEFT_WRAPPERS.register_module(name='SEEMDecoderAdapters')
class SEEMDecoderAdapters:
    """Bottleneck adapters in SEEM's decoder (see the module doc); a ``peft`` config entry.

    Args:
        layers: which layer outputs get a serial adapter: any of ``'cross'``, ``'self'``, ``'ffn'``.
        mask_head: add the parallel adapter beside ``mask_embed``.
        reduction: bottleneck width ``hidden_dim // reduction`` (2: d → d/2 → d, as FORK-A).
        act / dropout / scale: as :class:`~ovseg.models.peft.BottleneckAdapters` (FORK-A: ReLU, dropout 0.1,
            Kaiming init; ours: ReLU, no dropout, zero-initialised up-projection so training starts from SEEM).
        module: the decoder's attribute name on the model.
        name: key in each ``adapters`` container.
    """

    def __init__(self, layers: Sequence[str] = ('cross', 'self', 'ffn'), mask_head: bool = True,
                 reduction: int = 2, act: str = 'ReLU', dropout: float = 0.0, scale: float = 1.0,
                 module: str = 'transformer_decoder', name: str = 'default') -> None:
        unknown = sorted(set(layers) - set(DECODER_LAYER_GROUPS))
        if unknown or not (layers or mask_head):
            raise ValueError(f'SEEMDecoderAdapters: layers must be a subset of {sorted(DECODER_LAYER_GROUPS)} '
                             f'(got {list(layers)}), with at least one adapter')
        self.layers, self.mask_head, self.module, self.name = tuple(layers), bool(mask_head), module, name
        self.common = dict(reduction=int(reduction), act=act, dropout=dropout, scale=scale, name=name,
                           freeze_base=False)  # what trains is trainable_params' decision

    def apply(self, model: nn.Module) -> list[str]:
        decoder = model.get_submodule(self.module)
        hidden = int(decoder.hidden_dim)
        mask_dim = int(getattr(decoder, 'mask_dim', hidden))
        names: list[str] = []
        if self.layers:
            groups = '|'.join(DECODER_LAYER_GROUPS[g] for g in self.layers)
            names += BottleneckAdapters(targets=rf'({groups})\.\d+', dim=hidden, module=self.module,
                                        **self.common).apply(model)
        if self.mask_head:
            names += BottleneckAdapters(targets=['mask_embed'], mode='parallel', in_dim=hidden, dim=mask_dim,
                                        hidden_dim=max(hidden // self.common['reduction'], 1), module=self.module,
                                        **{k: v for k, v in self.common.items() if k != 'reduction'}).apply(model)
        return names


def count_trainable(model: nn.Module) -> tuple[int, int]:
    """(trainable, total) parameter elements of a model (shared tensors once)."""
    _, trainable, total = parameter_table(model, depth=1)
    return trainable, total


def strategy_summary(model_cfg: Mapping[str, Any], peft: Any = None, trainable_params: Mapping | None = None,
                     device: str | torch.device = 'meta') -> dict[str, Any]:
    """Build ``model_cfg``, apply a strategy's ``peft`` / ``trainable_params`` and count what trains.

    ``device='meta'`` builds without allocating memory (the Focal-L counts of the docs). Returns ``trainable``,
    ``total``, ``percent`` and ``per_module`` (top-level module → (trainable, total)).
    """
    from mmengine.registry import init_default_scope

    from ovseg.registry import MODELS
    init_default_scope('ovseg')
    cfg = dict(model_cfg)
    cfg['criterion'] = None  # losses hold no parameters; skip building them
    with torch.device(device):
        model = MODELS.build(cfg)
        configure_trainable(model, peft, trainable_params, log_table=False)
    rows, trainable, total = parameter_table(model, depth=1)
    return dict(trainable=trainable, total=total, percent=100.0 * trainable / total if total else 0.0,
                per_module={r.name: (r.trainable, r.total) for r in rows})
