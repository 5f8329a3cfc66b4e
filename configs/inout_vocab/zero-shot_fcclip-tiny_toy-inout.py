# Toy zero-shot: the pretrained tiny FC-CLIP on the toy val split, no fine-tuning.
_base_ = ['./_base_/inout_fcclip-tiny_toy.py']
