# As the 4B config, from the released Sa2VA-1B (InternVL2.5-1B: Qwen2.5-0.5B-Instruct LLM).
_base_ = ['./_base_/sa2va_sft_recipe.py']
release = 'checkpoints/Sa2VA-1B'
model = dict(release=release)
