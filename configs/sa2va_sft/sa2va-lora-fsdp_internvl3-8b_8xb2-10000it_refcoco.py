# Referring-segmentation SFT of the released Sa2VA-InternVL3-8B (Qwen2.5-7B LLM) on RefCOCO train under FSDP: the
# frozen LLM / ViT weights are sharded over the GPUs instead of replicated (docs/fsdp.md).
#   bash tools/dist_train.sh configs/sa2va_sft/sa2va-lora-fsdp_internvl3-8b_8xb2-10000it_refcoco.py 8
_base_ = ['./sa2va-lora_4b_8xb2-10000it_refcoco.py', '../_base_/fsdp.py']

release = 'checkpoints/Sa2VA-InternVL3-8B'  # a downloaded ByteDance/Sa2VA-InternVL3-8B folder
model = dict(release=release)
runner_type = 'OVSegFlexibleRunner'  # mmengine's Runner cannot use strategies (configs/_base_/fsdp.py)
# one FSDP unit per transformer block of the LLM and the ViT (Qwen3 LLMs: 'Qwen3DecoderLayer')
strategy = dict(model_wrapper=dict(auto_wrap_policy=dict(
    _delete_=True, type='layer_name_auto_wrap_policy',
    layer_names=['Qwen2DecoderLayer', 'InternVisionEncoderLayer'])))
