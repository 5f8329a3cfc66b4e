# SEEM toy fine-tuning, LoRA variant "backbone-lora-decoder-lora"
# (_base_/strategy_backbone-lora-decoder-lora.py):
# the tiny SEEM pretrained by seem_tiny_toy-pretrain.py, fine-tuned on ToyScenes seed 0 with all 11 classes and
# grounding sentences (_base_/toy_seem_data.py), 150 iterations at batch 4 (_base_/toy_finetune.py).
#   train (val = PQ / mIoU):  python tools/train.py configs/seem_ft/seem_tiny_toy-backbone-lora-decoder-lora.py
#   grounding (cIoU / gIoU):  python tools/test.py configs/seem_ft/seem_tiny_toy-backbone-lora-decoder-lora.py \
#                                 work_dirs/seem_tiny_toy-backbone-lora-decoder-lora/iter_150.pth
# Measured numbers: docs/seem_ft.md ("Toy table").
_base_ = ['./_base_/seem_tiny_toy_model.py', './_base_/toy_seem_data.py', './_base_/toy_finetune.py',
          './_base_/strategy_backbone-lora-decoder-lora.py']
