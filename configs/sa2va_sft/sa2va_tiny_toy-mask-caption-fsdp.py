# The toy mask-caption loop under FSDP (fully sharded data parallel; docs/fsdp.md): the CPU check of the path the
# large models take (configs/sa2va_sft/sa2va-lora-*fsdp_internvl3-8b_*). The EMA teacher is not available under FSDP
# (each rank holds only shards of the trainable tensors: TrainableEMAHook refuses), so the student captions.
#   bash tools/dist_train.sh configs/sa2va_sft/sa2va_tiny_toy-mask-caption-fsdp.py 2
_base_ = ['./sa2va_tiny_toy-mask-caption.py', '../_base_/fsdp.py']

runner_type = 'OVSegFlexibleRunner'
model = dict(captioner='student')
custom_hooks = [dict(type='TrainableCheckpointHook')]
strategy = dict(model_wrapper=dict(auto_wrap_policy=dict(
    _delete_=True, type='layer_name_auto_wrap_policy',
    layer_names=['Qwen2DecoderLayer', 'InternVisionEncoderLayer'])))
