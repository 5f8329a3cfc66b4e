# Strategy "frozen backbone, decoder adapters" (SEEM fine-tuning fork FORK-A:
# msdkarimi/Segment-Everything-Everywhere-All-At-Once@fine-tune).
# Trains only the adapters added to SEEM's decoder: a serial bottleneck d -> d/2 -> d after the cross-attention,
# self-attention and FFN of every decoder layer, and one parallel adapter beside the mask head (its output is added
# to mask_embed); zero-initialised, so step 0 is the pretrained SEEM (projects/seem_ft/seem_ft/strategies.py).
# Frozen: backbone, pixel decoder, language encoder (SEEM FIX_PARAM defaults) and every original decoder weight,
# class_embed included (the class / grounding projection stays aligned with the frozen language encoder).
peft = [dict(type='SEEMDecoderAdapters', layers=('cross', 'self', 'ffn'), mask_head=True, reduction=2, act='ReLU')]
trainable_params = dict(train=[r'^transformer_decoder\..*\.adapters\.'])
