# FSDP (fully sharded data parallel) training. A config using it sets two things:
#   _base_ = [..., '../_base_/fsdp.py']       # after the bases that bring default_runtime.py
#   runner_type = 'OVSegFlexibleRunner'       # in the config itself, see below
# and is launched as usual: bash tools/dist_train.sh CONFIG NUM_GPUS (tools/train.py builds the runner from
# runner_type). Usage, limits and the Qwen2/Qwen3 layer names: docs/fsdp.md.
#
# runner_type cannot live here: default_runtime.py sets it (OVSegRunner) and mmengine refuses a key that two
# bases of one config both set. mmengine's Runner cannot use strategies, FlexibleRunner can; the ovseg subclass
# keeps what OVSegRunner gives DDP runs (peft / trainable_params applied before FSDP wraps the model, the
# trainable-only optimizer, the work-dir lock, exact resume, weights-only loading). A config with `strategy`
# and another runner_type is refused at launch (ovseg/utils/launch.py) instead of silently training without FSDP.

strategy = dict(
    # mmengine 0.10.7's FSDPStrategy fails to resume under torch >= 2.1 (optimizer-state load) and pins CUDA
    # (device_id=LOCAL_RANK); OVSegFSDPStrategy fixes both (ovseg/engine/fsdp.py).
    type='OVSegFSDPStrategy',
    # one ordinary checkpoint gathered on rank 0 (CPU offload), loadable with torch.load(weights_only=True) and
    # by OVSegRunner; mmengine's default 'local' writes ShardedTensor files per rank, refused by weights-only load.
    state_dict_cfg='full',
    model_wrapper=dict(
        type='MMFullyShardedDataParallel',
        # frozen + trainable parameters in one FSDP unit (LoRA next to its frozen base layer) need it;
        # it is mmengine's default, spelled out because False fails with ovseg's trainable sets.
        use_orig_params=True,
        # which submodules become FSDP units (sharded, gathered one at a time). A config cannot hold classes:
        # size_based_auto_wrap_policy (torch's, by parameter count) or layer_name_auto_wrap_policy
        # (layer_names=['Qwen2DecoderLayer']), both registered in mmengine's FUNCTIONS by ovseg.engine.fsdp.
        auto_wrap_policy=dict(type='size_based_auto_wrap_policy', min_num_params=int(1e7)),
        # device_id is not set here: OVSegFSDPStrategy uses LOCAL_RANK with CUDA (mmengine's behaviour) and the
        # CPU without it (gloo tests). A torch.device cannot be written in a config dump anyway.
    ),
)
