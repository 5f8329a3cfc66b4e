# LoRA alternative to the backbone and decoder adapters: LoRA on every FocalNet block's linears and 1x1 conv
# (modulation f / h / proj, mlp fc1 / fc2; peft supports Linear and Conv2d) and on the decoder FFN / mask-head
# linears (see strategy_frozen-backbone-decoder-lora.py for why not the attention). Everything else frozen.
peft = [
    dict(type='LoRA', module='backbone', targets=r'layers\.\d+\.blocks\.\d+\.(modulation\.(f|h|proj)|mlp\.fc[12])',
         r=8, alpha=16),
    dict(type='LoRA', module='transformer_decoder',
         targets=r'transformer_ffn_layers\.\d+\.linear[12]|mask_embed\.layers\.\d+', r=8, alpha=16),
]
trainable_params = dict(train=[r'\.lora_[AB]\.'])
