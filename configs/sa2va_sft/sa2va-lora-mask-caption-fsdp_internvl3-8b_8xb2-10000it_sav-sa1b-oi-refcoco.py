# The mask-caption loop for Sa2VA-InternVL3-8B under FSDP. The EMA teacher needs every trainable tensor whole on
# each rank, which FSDP's shards are not (TrainableEMAHook refuses under FSDP), so here the student captions
# (captioner='student'); on DDP (the 4B config) the teacher is the EMA, as the seed asks.
#   bash tools/dist_train.sh <this config> 8
_base_ = ['./sa2va-lora-mask-caption_4b_8xb2-10000it_sav-sa1b-oi-refcoco.py', '../_base_/fsdp.py']

release = 'checkpoints/Sa2VA-InternVL3-8B'  # a downloaded ByteDance/Sa2VA-InternVL3-8B folder
model = dict(release=release, captioner='student')
custom_hooks = [dict(type='TrainableCheckpointHook')]
runner_type = 'OVSegFlexibleRunner'
strategy = dict(model_wrapper=dict(auto_wrap_policy=dict(
    _delete_=True, type='layer_name_auto_wrap_policy',
    layer_names=['Qwen2DecoderLayer', 'InternVisionEncoderLayer'])))
