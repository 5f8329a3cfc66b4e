# LoRA alternative to the decoder adapters (peft, through the core LoRA wrapper): rank-r updates of the decoder's
# FFN linears (linear1 / linear2 of every layer) and of the mask head MLP; everything else frozen.
# Not on the attention: nn.MultiheadAttention calls its in-/out-projection weights functionally, and peft's
# MultiheadAttention support nests a second LoRA layer in out_proj, which the core LoRA wrapper refuses (it checks
# that exactly the selected layers were wrapped). FORK-C used loratorch's MultiheadAttention (q, v) for that.
peft = [dict(type='LoRA', module='transformer_decoder',
             targets=r'transformer_ffn_layers\.\d+\.linear[12]|mask_embed\.layers\.\d+', r=8, alpha=16)]
trainable_params = dict(train=[r'\.lora_[AB]\.'])
