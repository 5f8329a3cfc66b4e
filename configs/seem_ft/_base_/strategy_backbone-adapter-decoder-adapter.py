# Strategy "backbone adapters, decoder adapters" (FORK-A:
# msdkarimi/Segment-Everything-Everywhere-All-At-Once@fine-tune). Backbone: one serial
# bottleneck C -> C/4 -> C per FocalNet block on the output of its focal modulation (FORK-A's place: "after
# modulation in every FocalModulationBlock"), zero-initialised. Decoder: as strategy_frozen-backbone-decoder-adapter.
# Everything else is frozen. The adapters train: the runner builds the optimizer after peft and trainable_params
# (FORK-A set its backbone adapters trainable after building its optimizer, so they never trained).
peft = [
    dict(type='BottleneckAdapters', module='backbone', targets=r'layers\.\d+\.blocks\.\d+\.modulation\.proj',
         reduction=4, act='ReLU'),
    dict(type='SEEMDecoderAdapters', layers=('cross', 'self', 'ffn'), mask_head=True, reduction=2, act='ReLU'),
]
trainable_params = dict(train=[r'\.adapters\.'])
