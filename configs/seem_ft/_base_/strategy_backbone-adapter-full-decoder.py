# Strategy "backbone adapters, full decoder" (FORK-A:
# msdkarimi/Segment-Everything-Everywhere-All-At-Once@fine-tune): the backbone adapters of
# strategy_backbone-adapter-decoder-adapter + the whole SEEM decoder as SEEM's default (spatial-only parameters
# frozen: no spatial training here; see the *-spatial configs). Frozen: backbone weights, pixel decoder, language
# encoder.
peft = [
    dict(type='BottleneckAdapters', module='backbone', targets=r'layers\.\d+\.blocks\.\d+\.modulation\.proj',
         reduction=4, act='ReLU'),
]
trainable_params = dict(
    train=[r'^backbone\..*\.adapters\.', r'^transformer_decoder\.'],
    freeze=[r'^transformer_decoder\.(mask_sptial_embed|spatial_embed|spatial_featured|pn_indicator)\.'])
