# DreamMask on the tiny FC-CLIP, CPU default: real ToyScenes (star/water withheld from training) mixed with
# toy synthetic scenes of star/water in NSS processed_dataset format, SRA on. docs/dreammask.md has results.
_base_ = ['../fcclip/fcclip_tiny_toy-scenes.py']
custom_imports = dict(imports=['projects.dreammask.dreammask'], allow_failed_imports=False)

synthetic_root = 'data/toy_synthetic'
synthetic_generate = dict(classes=['star', 'water'], num_scenes=100, size=128, seed=1)
batch_size = 4
num_synthetic = 2  # per batch of 4: 2 real (they feed the bank) + 2 synthetic

model = dict(
    type='DreamMaskFCCLIP',
    # 9 real training classes + the 2 novel synthetic ones (star, water) appended by NSSSceneDataset.
    sra=dict(num_classes=11, memory_bank_size=32, lambda_sra=0.1))  # MEMORY_BANK_SIZE 32, LAMBDA_SRA 0.1

synthetic_pipeline = [
    dict(type='LoadImage'),
    dict(type='LoadNSSAnnotations'),
    dict(type='RandomFlip', prob=0.5),
    dict(type='RandomResizeScale', min_scale=0.5, max_scale=1.5, target_size=(128, 128)),
    dict(type='FixedSizeCrop', crop_size=(128, 128)),
    dict(type='PackSegInputs', with_instances=True, extra_meta_keys=('is_synthetic',)),  # DreamMaskFCCLIP.synthetic_key
]
train_dataloader = dict(
    batch_size=batch_size,
    sampler=dict(_delete_=True, type='RealSyntheticMixSampler', batch_size=batch_size,
                 num_synthetic=num_synthetic, shuffle=True),
    dataset=dict(
        _delete_=True,
        type='RealSyntheticDataset',
        real={{_base_.train_dataloader.dataset}},
        synthetic=dict(type='ToyNSSSceneDataset', data_root=synthetic_root, generate=synthetic_generate,
                       pipeline=synthetic_pipeline)))
